using System.Text.Json.Nodes;
using Parity.Planning;
using Parity.Specs;
using Parity.Tests;

namespace Parity.Data.Tests;

/// <summary>
/// CSV, .npy and .npz sources, read from files NumPy wrote (fixtures/data: 96 samples of 6 features, 3 classes, the
/// same samples in every file), and every kind of bad file named with its JSON path and its place in the file.
/// </summary>
public sealed class FileDataTests
{
    private static string Data(string file) => Path.Combine(Repository.FixturesDirectory, "data", file);

    private static ScenarioSpec Blobs => SpecLoader.LoadFile(Repository.Fixture("blobs-csv.json"));

    /// <summary>The fixture with its training source replaced, resolved against <paramref name="baseDirectory"/>.</summary>
    private static Plan PlanWithTrain(JsonObject train, string? baseDirectory = null)
    {
        var root = JsonNode.Parse(File.ReadAllText(Repository.Fixture("blobs-csv.json")))!.AsObject();
        root["data"]!["train"] = train;
        root["data"]!["eval"]!["path"] = Data("blobs.npz");
        root["data"]!["batchSize"] = 1; // the small files below hold a row or two
        return Planner.Build(SpecLoader.Parse(root.ToJsonString(), baseDirectory ?? Path.Combine(Repository.FixturesDirectory, "data")));
    }

    private static SpecException TrainError(JsonObject train, string? baseDirectory = null) =>
        Assert.Throws<SpecException>(() => PlanWithTrain(train, baseDirectory))!;

    private static void AssertSameSamples(DataSet actual, DataSet expected)
    {
        var a = actual.All();
        var e = expected.All();
        Assert.That(a.Inputs.Shape, Is.EqualTo(e.Inputs.Shape));
        Assert.That(a.Inputs.Data, Is.EqualTo(e.Inputs.Data), "inputs");
        Assert.That(a.Labels, Is.EqualTo(e.Labels), "labels");
    }

    [Test]
    public void A_csv_file_and_an_npz_archive_of_the_same_samples_give_the_same_data_set()
    {
        var plan = Planner.Build(Blobs);
        Assert.That(plan.Train.Count, Is.EqualTo(96));
        Assert.That(plan.Train.Features, Is.EqualTo(6));
        Assert.That(plan.Train.Classes, Is.EqualTo(3));
        Assert.That(plan.Train.All().Labels.Distinct().Order(), Is.EqualTo(new[] { 0, 1, 2 }));
        AssertSameSamples(plan.Train, plan.Eval);
    }

    [Test]
    public void Npy_files_in_c_or_fortran_order_give_the_samples_of_the_archive()
    {
        var reference = Planner.Build(Blobs).Eval;
        AssertSameSamples(PlanWithTrain(new JsonObject { ["type"] = "npy", ["inputs"] = "blobs-x.npy", ["labels"] = "blobs-y.npy" }).Train, reference);
        AssertSameSamples(PlanWithTrain(new JsonObject { ["type"] = "npy", ["inputs"] = "blobs-x-fortran.npy", ["labels"] = "blobs-y.npy" }).Train, reference);
    }

    [Test]
    public void Named_csv_features_are_read_in_the_order_named_and_limit_keeps_the_first_rows()
    {
        var plan = PlanWithTrain(new JsonObject
        {
            ["type"] = "csv", ["path"] = "blobs.csv", ["label"] = "class", ["limit"] = 20,
            ["features"] = new JsonArray("f5", "f4", "f3", "f2", "f1", "f0"),
        });
        var all = Planner.Build(Blobs).Train.All();
        var reversed = plan.Train.All();
        Assert.That(reversed.Size, Is.EqualTo(20));
        for (int i = 0; i < 20; i++)
            for (int f = 0; f < 6; f++)
                Assert.That(reversed.Inputs.Data[i * 6 + f], Is.EqualTo(all.Inputs.Data[i * 6 + 5 - f]));
        Assert.That(reversed.Labels, Is.EqualTo(all.Labels[..20]));
    }

    [Test]
    public void A_field_that_is_not_a_number_is_named_by_line_and_column()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("bad.csv"), "a,b,c,d,e,f,y\n1,2,3,4,5,6,0\n1,2,oops,4,5,6,1\n");
        var e = TrainError(new JsonObject { ["type"] = "csv", ["path"] = "bad.csv", ["label"] = "y" }, dir.Path);
        Assert.That(e.JsonPath, Is.EqualTo("$.data.train"));
        Assert.That(e.Problem, Does.Contain("bad.csv: line 3, column 'c': 'oops' is not a finite number"));
    }

    [TestCase("a,b,c,d,e,f,y\n1,2,3,4,5,6,0\n1,2,3,4,5,6\n", "line 3: 6 fields where the header has 7")]
    [TestCase("a,b,c,d,e,f,y\n1,2,3,4,5,6,7\n", "line 2: label 7 is not a class index in 0..2")]
    [TestCase("a,b,c,d,e,f,y\n1,2,3,4,5,6,0.5\n", "line 2: label 0.5 is not a class index")]
    [TestCase("a,b,c,d,e,f,y\n1,2,3,4,5,1e39,0\n", "line 2, feature 5: 1E+39 is not a finite float32 value")]
    [TestCase("a,b,c,d,e,f,label\n1,2,3,4,5,6,0\n", "line 1: no label column 'y'; the header names: a, b, c, d, e, f, label")]
    [TestCase("", "no header row")]
    public void A_malformed_csv_file_is_refused_with_the_line_that_is_wrong(string text, string expected)
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("bad.csv"), text);
        var e = TrainError(new JsonObject { ["type"] = "csv", ["path"] = "bad.csv", ["label"] = "y" }, dir.Path);
        Assert.That(e.JsonPath, Is.EqualTo("$.data.train"));
        Assert.That(e.Problem, Does.Contain(expected));
    }

    [Test]
    public void A_truncated_npy_file_is_refused_with_what_its_header_claims()
    {
        using var dir = new TempDirectory();
        var bytes = File.ReadAllBytes(Data("blobs-x.npy"));
        File.WriteAllBytes(dir.File("x.npy"), bytes[..(bytes.Length - 7)]);
        File.Copy(Data("blobs-y.npy"), dir.File("y.npy"));
        var e = TrainError(new JsonObject { ["type"] = "npy", ["inputs"] = "x.npy", ["labels"] = "y.npy" }, dir.Path);
        Assert.That(e.Problem, Does.Contain("x.npy: shape (96, 6) of '<f4' needs 2304 data bytes from byte 128, but the file holds 2297"));
    }

    [TestCase("NOTNUMPY", "not a NumPy .npy file")]
    [TestCase("\u0093NUMPY\u0001\u0000\u0010\u0000{'descr': '<U5'}", "the header has no readable 'fortran_order' entry")]
    public void A_file_that_is_not_a_numeric_npy_array_is_refused(string content, string expected)
    {
        using var dir = new TempDirectory();
        File.WriteAllBytes(dir.File("x.npy"), System.Text.Encoding.Latin1.GetBytes(content.PadRight(64)));
        File.Copy(Data("blobs-y.npy"), dir.File("y.npy"));
        var e = TrainError(new JsonObject { ["type"] = "npy", ["inputs"] = "x.npy", ["labels"] = "y.npy" }, dir.Path);
        Assert.That(e.Problem, Does.Contain(expected));
    }

    [Test]
    public void A_string_array_is_refused_by_its_element_type()
    {
        using var dir = new TempDirectory();
        const string header = "{'descr': '<U5', 'fortran_order': False, 'shape': (96, 6), }";
        var bytes = new List<byte>([0x93, .. "NUMPY"u8, 1, 0, (byte)(header.Length + 1), 0]);
        bytes.AddRange(System.Text.Encoding.Latin1.GetBytes(header + "\n"));
        File.WriteAllBytes(dir.File("x.npy"), [.. bytes]);
        File.Copy(Data("blobs-y.npy"), dir.File("y.npy"));
        var e = TrainError(new JsonObject { ["type"] = "npy", ["inputs"] = "x.npy", ["labels"] = "y.npy" }, dir.Path);
        Assert.That(e.Problem, Does.Contain("element type '<U5' is not a numeric type"));
    }

    [Test]
    public void Arrays_of_different_lengths_and_an_absent_archive_member_are_named()
    {
        var lengths = TrainError(new JsonObject { ["type"] = "npy", ["inputs"] = "blobs-x.npy", ["labels"] = "blobs-x.npy" });
        Assert.That(lengths.Problem, Does.Contain("blobs-x.npy has shape (96, 6); labels need shape (count,) or (count, 1)"));
        var member = TrainError(new JsonObject { ["type"] = "npz", ["path"] = "blobs.npz", ["inputs"] = "x_test", ["labels"] = "y_train" });
        Assert.That(member.Problem, Does.Contain("the archive holds no array 'x_test'; it holds: x_train, y_train"));
    }

    [Test]
    public void A_csv_source_with_a_bad_setting_is_refused_by_the_loader_at_its_path()
    {
        var root = JsonNode.Parse(File.ReadAllText(Repository.Fixture("blobs-csv.json")))!.AsObject();
        root["data"]!["train"] = new JsonObject { ["type"] = "csv", ["path"] = "x.csv", ["label"] = "y", ["features"] = new JsonArray("a", "y") };
        var e = Assert.Throws<SpecException>(() => SpecLoader.Parse(root.ToJsonString()))!;
        Assert.That(e.JsonPath, Is.EqualTo("$.data.train.features"));
        root["data"]!["train"] = new JsonObject { ["type"] = "csv", ["path"] = "x.csv", ["label"] = "y", ["separator"] = ";;" };
        e = Assert.Throws<SpecException>(() => SpecLoader.Parse(root.ToJsonString()))!;
        Assert.That(e.JsonPath, Is.EqualTo("$.data.train.separator"));
    }

    [Test]
    public void A_csv_spec_survives_the_canonical_round_trip()
    {
        var spec = Blobs;
        var again = SpecLoader.Parse(spec.CanonicalJson, spec.BaseDirectory);
        Assert.That(again.CanonicalJson, Is.EqualTo(spec.CanonicalJson));
        Assert.That(again.Data.Train, Is.InstanceOf<CsvSourceSpec>());
        Assert.That(((NumpySourceSpec)again.Data.Eval!).Archive, Is.EqualTo("data/blobs.npz"));
    }
}
