using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Xml;
using Parity.Backends;
using Parity.IO;
using Parity.Running;
using Parity.Specs;

namespace Parity.Harness;

/// <summary>One backend's check in a suite: its verdict against its baseline and the message that says why.</summary>
public sealed record SuiteCheck(string Backend, Verdict Verdict, string Message);

/// <summary>One spec of a suite: where its fresh run went (relative to the suite's directory) and its checks.</summary>
/// <param name="Spec">The spec file as the suite named it.</param>
/// <param name="Scenario">The scenario name, or the file name when the spec did not load.</param>
/// <param name="Run">The run directory relative to the suite directory, or null when nothing ran.</param>
/// <param name="Checks">One check per backend; a spec that did not load has one check named <c>spec</c>.</param>
public sealed record SuiteEntry(string Spec, string Scenario, string? Run, IReadOnlyList<SuiteCheck> Checks);

/// <summary>What a suite (or one shard of it) found, as <c>suite.json</c> holds it.</summary>
/// <param name="Format">Always <c>parity-suite</c>.</param>
/// <param name="Version">1.</param>
/// <param name="Shards">The shards this result covers, as K/N; empty for an unsharded suite.</param>
/// <param name="Entries">One entry per spec, in suite order.</param>
public sealed record SuiteResult(string Format, int Version, IReadOnlyList<string> Shards, IReadOnlyList<SuiteEntry> Entries)
{
    /// <summary>
    /// Every check together. Nothing checked is an error, except in one shard of a suite with fewer specs than shards:
    /// that shard agrees (the merged suite still needs a check to agree).
    /// </summary>
    [JsonIgnore]
    public Verdict Verdict => Entries.Count == 0
        ? (Shards.Count == 1 ? Verdict.Agree : Verdict.Error)
        : Verdicts.Combine(Entries.SelectMany(e => e.Checks).Select(c => c.Verdict).DefaultIfEmpty(Verdict.Error));
}

/// <summary>A shard of a suite: part <see cref="Index"/> (1-based) of <see cref="Count"/>.</summary>
public readonly record struct Shard(int Index, int Count)
{
    /// <summary>Parses <c>K/N</c> with 1 &lt;= K &lt;= N &lt;= 1000.</summary>
    public static Shard Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int k)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n is >= 1 and <= 1000 && k >= 1 && k <= n)
            return new Shard(k, n);
        throw new UsageException($"--shard: '{text}' is not K/N with 1 <= K <= N <= 1000 (e.g. 2/3)");
    }

    /// <inheritdoc />
    public override string ToString() => $"{Index}/{Count}";
}

/// <summary>
/// Regression suites: <c>parity verify</c> over many specs (files or directories of them), split into shards that a CI
/// job matrix runs on separate machines, and merged back into one result (docs/report.md, "Suites"). A shard is chosen
/// deterministically: specs are dealt, most expensive first, to the shard with the least estimated cost so far, so every
/// machine computes the same split without talking to the others.
/// </summary>
public static class Suites
{
    /// <summary>The suite result file in a suite directory.</summary>
    public const string ResultFile = "suite.json";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };

    /// <summary>The spec files named by <paramref name="paths"/>: files as given, directories as their <c>*.json</c> files in name order.</summary>
    public static IReadOnlyList<string> Expand(IEnumerable<string> paths)
    {
        var specs = new List<string>();
        foreach (string path in paths)
        {
            if (Directory.Exists(path)) specs.AddRange(Directory.GetFiles(path, "*.json").Order(StringComparer.Ordinal));
            else if (File.Exists(path)) specs.Add(path);
            else throw new UsageException($"{path}: no such spec file or directory");
        }
        if (specs.Count == 0) throw new UsageException($"no spec (*.json) in {string.Join(", ", paths)}");
        return specs.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// The specs of <paramref name="shard"/>: longest-processing-time-first dealing of <paramref name="costs"/> (ties broken
    /// by path) over <see cref="Shard.Count"/> shards; returned in suite order.
    /// </summary>
    public static IReadOnlyList<string> Select(IReadOnlyList<(string Spec, double Cost)> costs, Shard shard)
    {
        ArgumentNullException.ThrowIfNull(costs);
        var load = new double[shard.Count];
        var owner = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (spec, cost) in costs.OrderByDescending(c => c.Cost).ThenBy(c => c.Spec, StringComparer.Ordinal))
        {
            int least = 0;
            for (int s = 1; s < load.Length; s++) if (load[s] < load[least]) least = s;
            load[least] += cost;
            owner[spec] = least + 1;
        }
        return costs.Select(c => c.Spec).Where(s => owner[s] == shard.Index).ToList();
    }

    /// <summary>
    /// The estimated cost of verifying <paramref name="specPath"/>: steps (from its baselines) x batch x weights x backends
    /// with a baseline. Cheap: reads the spec and the baselines' info, no data. A spec that does not load costs 1.
    /// </summary>
    public static double EstimatedCost(string specPath, string baselinesRoot)
    {
        try
        {
            var spec = SpecLoader.LoadFile(specPath);
            string scenarioDir = Baselines.ScenarioDirectory(baselinesRoot, spec.Name);
            var infos = Directory.Exists(scenarioDir)
                ? Directory.GetDirectories(scenarioDir).SelectMany(Directory.GetDirectories).Select(TryInfo).OfType<BaselineInfo>().ToList()
                : [];
            double steps = infos.Count == 0 ? 1 : infos.Max(i => i.Steps);
            double weights = spec.Model.Layers.Sum(l => l.ParameterShapes.Sum(p => p.Shape.Aggregate(1.0, (a, b) => a * b)));
            return 1 + steps * spec.Data.BatchSize * Math.Max(weights, 1) * Math.Max(infos.Select(i => i.Backend).Distinct().Count(), 1);
        }
        catch (Exception e) when (e is SpecException or IOException or UnauthorizedAccessException)
        {
            return 1;
        }
    }

    /// <summary>
    /// Verifies every spec of <paramref name="specs"/> (those of <paramref name="shard"/> when given) against its baselines,
    /// each into <c>OUT/SCENARIO</c>, and writes <c>suite.json</c>, <c>junit.xml</c>, <c>summary.md</c> and
    /// <c>index.html</c> into <paramref name="outDirectory"/>. A spec that does not load is an error entry; the rest still run.
    /// </summary>
    public static SuiteResult Verify(IReadOnlyList<string> specs, Shard? shard, IReadOnlyList<string>? backends, string baselinesRoot,
        BackendRegistry registry, string outDirectory, IProgress<RunProgress>? progress = null, TraceRetention keepTraces = TraceRetention.All,
        TextWriter? log = null)
    {
        ArgumentNullException.ThrowIfNull(specs);
        var chosen = shard is { } s ? Select([.. specs.Select(p => (p, EstimatedCost(p, baselinesRoot)))], s) : specs;
        var entries = new List<SuiteEntry>();
        foreach (string path in chosen)
        {
            ScenarioSpec spec;
            try
            {
                spec = SpecLoader.LoadFile(path);
            }
            catch (SpecException e)
            {
                entries.Add(new SuiteEntry(path, Path.GetFileNameWithoutExtension(path), null, [new SuiteCheck("spec", Verdict.Error, e.Message)]));
                log?.WriteLine($"ERROR {path}: {e.Message}");
                continue;
            }
            string runName = PathNames.Segment(spec.Name);
            if (entries.FirstOrDefault(e => e.Run == runName) is { } same)
            {
                entries.Add(new SuiteEntry(path, spec.Name, null, [new SuiteCheck("spec", Verdict.Error, $"scenario name '{spec.Name}' is also the name of {same.Spec}; a suite needs distinct names")]));
                continue;
            }
            string runDirectory = Path.Combine(outDirectory, runName);
            VerifyResult result;
            try
            {
                result = Baselines.Verify(spec, path, backends, baselinesRoot, registry, runDirectory, progress, keepTraces);
            }
            catch (Exception e) when (e is SpecException or UsageException or BackendException or IOException or InvalidDataException)
            {
                entries.Add(new SuiteEntry(path, spec.Name, runName, [new SuiteCheck("run", Verdict.Error, e.Message)]));
                log?.WriteLine($"ERROR {spec.Name}: {e.Message}");
                continue;
            }
            // A verification that stopped before running (no baseline, a stale one) leaves no report to link to.
            string? run = File.Exists(Path.Combine(runDirectory, "report.json")) ? runName : null;
            entries.Add(new SuiteEntry(path, spec.Name, run, [.. result.Checks.Select(c => new SuiteCheck(c.Backend, c.Verdict, c.Message))]));
            foreach (var c in result.Checks) log?.WriteLine($"{Label(c.Verdict)} {spec.Name} {c.Backend}");
        }
        var suite = new SuiteResult("parity-suite", 1, shard is { } sh ? [sh.ToString()] : [], entries);
        Write(suite, outDirectory);
        return suite;
    }

    /// <summary>
    /// Combines the shard directories <paramref name="shardDirectories"/> (each holding a <c>suite.json</c>) into one suite
    /// in <paramref name="outDirectory"/>. Refuses shards of different counts, a shard given twice, a missing shard, and a
    /// scenario present in two shards, so a merged result never claims more than was checked.
    /// </summary>
    public static SuiteResult Merge(IReadOnlyList<string> shardDirectories, string outDirectory)
    {
        ArgumentNullException.ThrowIfNull(shardDirectories);
        var parts = shardDirectories.Select(d => (Directory: d, Result: Read(d))).ToList();
        var shards = parts.SelectMany(p => p.Result.Shards.Select(s => (Shard: Shard.Parse(s), p.Directory))).ToList();
        if (shards.Count > 0)
        {
            if (shards.Count != parts.Count) throw new UsageException("merge: some inputs are shards and some are not; merge the shards of one suite");
            int n = shards[0].Shard.Count;
            if (shards.Any(s => s.Shard.Count != n)) throw new UsageException($"merge: the shards are of different splits ({string.Join(", ", shards.Select(s => s.Shard))})");
            var twice = shards.GroupBy(s => s.Shard.Index).FirstOrDefault(g => g.Count() > 1);
            if (twice is not null) throw new UsageException($"merge: shard {twice.Key}/{n} is given twice ({string.Join(", ", twice.Select(t => t.Directory))})");
            var missing = Enumerable.Range(1, n).Where(k => shards.All(s => s.Shard.Index != k)).ToList();
            if (missing.Count > 0) throw new UsageException($"merge: shard {string.Join(", ", missing.Select(k => $"{k}/{n}"))} is missing; a merged suite must hold every shard");
        }
        var entries = new List<SuiteEntry>();
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (directory, result) in parts.OrderBy(p => p.Result.Shards.Count == 0 ? 0 : Shard.Parse(p.Result.Shards[0]).Index))
            foreach (var entry in result.Entries)
            {
                if (seen.TryGetValue(entry.Scenario, out string? other))
                    throw new UsageException($"merge: scenario '{entry.Scenario}' is in both {other} and {directory}");
                seen[entry.Scenario] = directory;
                string? run = entry.Run is null ? null : Path.GetRelativePath(outDirectory, Path.Combine(directory, entry.Run));
                entries.Add(entry with { Run = run });
            }
        var merged = new SuiteResult("parity-suite", 1, [.. shards.OrderBy(s => s.Shard.Index).Select(s => s.Shard.ToString())], entries);
        Write(merged, outDirectory);
        return merged;
    }

    /// <summary>Reads the <c>suite.json</c> of <paramref name="directory"/>.</summary>
    public static SuiteResult Read(string directory)
    {
        string file = Path.Combine(directory, ResultFile);
        if (!File.Exists(file)) throw new UsageException($"{directory}: no {ResultFile} (give directories written by 'parity verify' with several specs or --shard)");
        try
        {
            var result = JsonSerializer.Deserialize<SuiteResult>(File.ReadAllText(file), Json);
            if (result is not { Format: "parity-suite", Version: 1, Entries: not null, Shards: not null } || result.Entries.Any(e => e.Checks is null || e.Scenario is null))
                throw new UsageException($"{file}: not a parity-suite version 1 result");
            return result;
        }
        catch (JsonException e)
        {
            throw new UsageException($"{file}: unreadable suite result: {e.Message}");
        }
    }

    private static BaselineInfo? TryInfo(string directory)
    {
        try
        {
            return Baselines.ReadInfo(directory);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or JsonException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>How a check's verdict reads in a log line: <c>ok</c>, <c>DIFFERS</c> or <c>ERROR</c>.</summary>
    public static string Label(Verdict verdict) => verdict switch { Verdict.Agree => "ok", Verdict.Diverge => "DIFFERS", _ => "ERROR" };

    private static void Write(SuiteResult suite, string outDirectory)
    {
        Directory.CreateDirectory(outDirectory);
        AtomicFile.WriteText(Path.Combine(outDirectory, ResultFile), JsonSerializer.Serialize(suite, Json));
        AtomicFile.WriteText(Path.Combine(outDirectory, "junit.xml"), JUnit(suite));
        AtomicFile.WriteText(Path.Combine(outDirectory, "summary.md"), Markdown(suite));
        AtomicFile.WriteText(Path.Combine(outDirectory, "index.html"), Html(suite));
    }

    // One <testsuite> per spec, one <testcase> per backend: a divergence is a failure, anything not judged an error.
    private static string JUnit(SuiteResult suite)
    {
        var text = new StringBuilder();
        using (var w = XmlWriter.Create(text, new XmlWriterSettings { Indent = true }))
        {
            var all = suite.Entries.SelectMany(e => e.Checks).ToList();
            w.WriteStartElement("testsuites");
            w.WriteAttributeString("name", "parity suite" + (suite.Shards.Count == 1 ? " shard " + suite.Shards[0] : ""));
            w.WriteAttributeString("tests", all.Count.ToString(CultureInfo.InvariantCulture));
            w.WriteAttributeString("failures", all.Count(c => c.Verdict == Verdict.Diverge).ToString(CultureInfo.InvariantCulture));
            w.WriteAttributeString("errors", all.Count(c => c.Verdict == Verdict.Error).ToString(CultureInfo.InvariantCulture));
            foreach (var e in suite.Entries)
            {
                w.WriteStartElement("testsuite");
                w.WriteAttributeString("name", e.Scenario);
                w.WriteAttributeString("tests", e.Checks.Count.ToString(CultureInfo.InvariantCulture));
                w.WriteAttributeString("failures", e.Checks.Count(c => c.Verdict == Verdict.Diverge).ToString(CultureInfo.InvariantCulture));
                w.WriteAttributeString("errors", e.Checks.Count(c => c.Verdict == Verdict.Error).ToString(CultureInfo.InvariantCulture));
                foreach (var c in e.Checks)
                {
                    w.WriteStartElement("testcase");
                    w.WriteAttributeString("classname", e.Scenario);
                    w.WriteAttributeString("name", c.Backend);
                    if (c.Verdict != Verdict.Agree)
                    {
                        w.WriteStartElement(c.Verdict == Verdict.Diverge ? "failure" : "error");
                        w.WriteAttributeString("message", c.Message.Split('\n')[0]);
                        w.WriteString(XmlSafe(c.Message));
                        w.WriteEndElement();
                    }
                    w.WriteEndElement();
                }
                w.WriteEndElement();
            }
            w.WriteEndElement();
        }
        return text.ToString().Replace("encoding=\"utf-16\"", "encoding=\"utf-8\"", StringComparison.Ordinal);
    }

    private static string Markdown(SuiteResult suite)
    {
        var md = new StringBuilder();
        md.Append("# Parity suite").Append(suite.Shards.Count == 1 ? $" (shard {suite.Shards[0]})" : "").Append(": ").Append(suite.Verdict.ToString().ToLowerInvariant()).Append("\n\n");
        md.Append("| scenario | backend | verdict | message |\n|---|---|---|---|\n");
        foreach (var e in suite.Entries)
            foreach (var c in e.Checks)
                md.Append("| ").Append(Cell(e.Scenario)).Append(" | ").Append(Cell(c.Backend)).Append(" | ").Append(Label(c.Verdict))
                    .Append(" | ").Append(Cell(c.Message.Split('\n')[0])).Append(" |\n");
        return md.ToString();
    }

    private static string Html(SuiteResult suite)
    {
        var h = new StringBuilder();
        h.Append("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">")
            .Append("<title>Parity suite</title><style>body{font-family:system-ui,sans-serif;margin:2em}td,th{padding:.3em .8em;text-align:left;border-bottom:1px solid #ddd}")
            .Append(".agree{color:#1a7f37}.diverge{color:#cf222e;font-weight:bold}.error{color:#9a6700;font-weight:bold}</style></head><body>")
            .Append("<h1>Parity suite").Append(suite.Shards.Count == 1 ? " shard " + E(suite.Shards[0]) : "").Append(": <span class=\"")
            .Append(suite.Verdict.ToString().ToLowerInvariant()).Append("\">").Append(suite.Verdict.ToString().ToLowerInvariant()).Append("</span></h1>")
            .Append("<table><tr><th>scenario</th><th>backend</th><th>verdict</th><th>message</th></tr>");
        foreach (var e in suite.Entries)
            foreach (var c in e.Checks)
            {
                string scenario = e.Run is null ? E(e.Scenario) : $"<a href=\"{E(e.Run.Replace('\\', '/'))}/report.html\">{E(e.Scenario)}</a>";
                h.Append("<tr><td>").Append(scenario).Append("</td><td>").Append(E(c.Backend)).Append("</td><td class=\"").Append(c.Verdict.ToString().ToLowerInvariant())
                    .Append("\">").Append(Label(c.Verdict)).Append("</td><td>").Append(E(c.Message.Split('\n')[0])).Append("</td></tr>");
            }
        return h.Append("</table></body></html>\n").ToString();
    }

    private static string E(string s) => System.Net.WebUtility.HtmlEncode(s);

    private static string Cell(string s) => s.Replace("|", "\\|", StringComparison.Ordinal).Replace("\r", " ", StringComparison.Ordinal);

    // XML 1.0 cannot hold most control characters; a worker's message may carry them.
    private static string XmlSafe(string s) => new([.. s.Where(ch => ch is '\n' or '\t' or '\r' || (ch >= ' ' && XmlConvert.IsXmlChar(ch)))]);
}
