using System.Text.Json;
using System.Text.Json.Nodes;
using Parity.Tests;

namespace Parity.Reporting.Tests;

public sealed class ReportSchemaTests
{
    private static readonly Lazy<SchemaValidator> Schema = new(() => new SchemaValidator(Repository.Docs("report.schema.json")));

    private static SchemaValidator Validator() => Schema.Value;

    [Test]
    public void A_real_report_written_by_a_run_session_validates_against_the_schema()
    {
        var report = JsonDocument.Parse(File.ReadAllText(RealRun.File("report.json"))).RootElement;
        Assert.That(Validator().Validate(report), Is.Empty);
    }

    [Test]
    public void A_diverging_report_with_findings_nan_and_infinity_validates_against_the_schema()
    {
        string json = JsonSerializer.Serialize(SampleReports.Diverging(), ReportWriter.Json);
        Assert.That(json, Does.Contain("\"Infinity\"").And.Contain("\"NaN\""), "the sample exercises non-finite numbers");
        Assert.That(Validator().Validate(JsonDocument.Parse(json).RootElement), Is.Empty);
    }

    [Test]
    public void The_validator_reports_a_missing_required_field_a_wrong_type_an_unknown_field_and_a_bad_enum()
    {
        var node = JsonNode.Parse(File.ReadAllText(RealRun.File("report.json")))!.AsObject();
        node.Remove("verdict");
        node["scenario"]!["steps"] = "fifty";
        node["surprise"] = 1;
        node["backends"]![0]!["status"] = "exploded";
        var errors = Validator().Validate(JsonDocument.Parse(node.ToJsonString()).RootElement);

        Assert.That(errors, Has.Some.Contains("$: Required properties [\"verdict\"] are not present"));
        Assert.That(errors, Has.Some.Contains("$.scenario.steps = \"fifty\": Value is \"string\" but should be \"integer\""));
        Assert.That(errors, Has.Some.Contains("$.surprise = 1: All values fail against the false schema (#/additionalProperties)"));
        Assert.That(errors, Has.Some.Contains("$.backends[0].status = \"exploded\": Value should match one of the values specified by the enum"));
    }

    [Test]
    public void Every_schema_property_is_documented_in_report_md()
    {
        string doc = File.ReadAllText(Repository.Docs("report.md"));
        var schema = JsonDocument.Parse(File.ReadAllText(Repository.Docs("report.schema.json"))).RootElement;
        var names = new SortedSet<string>(StringComparer.Ordinal);
        void Collect(JsonElement s)
        {
            if (s.ValueKind != JsonValueKind.Object) return;
            if (s.TryGetProperty("properties", out var props))
            {
                foreach (var p in props.EnumerateObject())
                {
                    names.Add(p.Name);
                    Collect(p.Value);
                }
            }
        }
        Collect(schema);
        foreach (var def in schema.GetProperty("$defs").EnumerateObject()) Collect(def.Value);
        Assert.That(names.Where(n => !doc.Contains($"`{n}`", StringComparison.Ordinal)), Is.Empty, "fields missing from docs/report.md");
    }

    [Test]
    public void Report_json_round_trips_through_the_reader()
    {
        var report = ReportWriter.ReadJson(RealRun.File("report.json"));
        Assert.That(report.Scenario.Name, Is.EqualTo("synthetic-mlp-bn"));
        Assert.That(report.Backends.Where(b => !b.Auxiliary).Select(b => b.Name), Is.EqualTo(new[] { "reference", "reference-f32" }));
        Assert.That(report.TolerancePolicy.Kinds, Does.ContainKey("forward"));
    }
}
