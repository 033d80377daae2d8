using Parity.Backends.Reference;
using Parity.Backends;
using Parity.Harness;
using Parity.Reporting;
using Parity.Running;
using Parity.Specs;
using NUnit.Framework;

namespace Parity.NUnit;

/// <summary>Options of <see cref="ParityAssert.Agree(ScenarioSpec, ParityOptions, string[])"/>.</summary>
/// <param name="Steps">Train this many steps instead of the spec's schedule (keeps a regression test fast).</param>
/// <param name="Reference">The backend every other is compared with.</param>
/// <param name="Tolerances">Tolerance overrides applied after the spec's, e.g. from <c>TolerancePolicy.ParseOverrides("loss=1e-6:1e-5")</c>.</param>
/// <param name="Device">cpu or cuda for backends that have a choice.</param>
/// <param name="KeepRunDirectory">Keep the run directory (traces, report.html) even when the backends agree.</param>
/// <param name="Registry">The backends to choose from; null for <see cref="ParityBackends.Default"/>.</param>
public sealed record ParityOptions(
    int? Steps = null,
    string Reference = ReferenceBackend.Float64Name,
    ToleranceOverrides? Tolerances = null,
    string? Device = null,
    bool KeepRunDirectory = false,
    BackendRegistry? Registry = null);

/// <summary>
/// Parity regression assertions for NUnit tests. <c>Agree</c> runs a spec through the whole pipeline (every tensor of
/// every step compared with the reference under the tolerance policy) into a temporary run directory and, when a
/// backend does not agree, fails with a <c>torch.testing.assert_close</c>-style message: mismatched elements k / N,
/// greatest absolute and relative difference and where, first divergence (step, tensor, origin or inherited) and the
/// diagnosed cause, plus the path of the kept report.html.
/// </summary>
public static class ParityAssert
{
    /// <summary>Runs the spec file on <paramref name="backends"/> (compared with the float64 reference) and asserts that they agree.</summary>
    /// <returns>The run's report, for further assertions.</returns>
    public static RunReport Agree(string specPath, params string[] backends)
    {
        ArgumentNullException.ThrowIfNull(specPath);
        ScenarioSpec spec;
        try
        {
            spec = SpecLoader.LoadFile(specPath);
        }
        catch (SpecException e)
        {
            throw new ArgumentException($"ParityAssert.Agree: {e.Message}", nameof(specPath), e);
        }
        return Run(spec, Path.GetFullPath(specPath), new ParityOptions(), backends);
    }

    /// <summary>Runs <paramref name="spec"/> with <paramref name="options"/> on <paramref name="backends"/> and asserts that they agree.</summary>
    /// <returns>The run's report, for further assertions.</returns>
    public static RunReport Agree(ScenarioSpec spec, ParityOptions options, params string[] backends)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(options);
        return Run(spec, null, options, backends);
    }

    /// <summary>
    /// The failure message for a report that does not agree, or null when it agrees: one block per comparison that
    /// diverged or errored, and where the report was kept.
    /// </summary>
    public static string? Explain(RunReport report, string? runDirectory)
    {
        ArgumentNullException.ThrowIfNull(report);
        if (report.Verdict == Verdict.Agree) return null;
        var blocks = new List<string> { $"Parity: scenario '{report.Scenario.Name}' {report.Verdict.Name()}s." };
        foreach (var b in report.Backends.Where(b => b.Status != RunStatus.Completed))
            blocks.Add($"{b.Name} {b.Status.Name()}: {b.Message}");
        foreach (var c in report.Comparisons.Where(c => c.Verdict != Verdict.Agree))
            blocks.Add(DivergenceText.Describe(c, report.Findings));
        if (runDirectory is not null) blocks.Add($"Report: {Path.Combine(runDirectory, "report.html")}");
        return string.Join("\n\n", blocks);
    }

    private static RunReport Run(ScenarioSpec spec, string? specPath, ParityOptions options, string[] backends)
    {
        if (backends is null || backends.Length == 0)
            throw new ArgumentException("ParityAssert.Agree: name at least one backend to compare with the reference, e.g. \"reference-f32\"", nameof(backends));
        string directory = Path.Combine(Path.GetTempPath(), "parity-nunit", $"{RunSession.Sanitize(spec.Name)}-{Guid.NewGuid().ToString("N")[..8]}");
        var request = new RunRequest(spec, specPath, backends, options.Reference, directory, options.Steps, options.Device, Tolerances: options.Tolerances);
        RunReport report;
        try
        {
            report = RunSession.Execute(request, options.Registry ?? ParityBackends.Default());
        }
        catch (UsageException e)
        {
            throw new ArgumentException($"ParityAssert.Agree: {e.Message}", nameof(backends), e);
        }
        string? failure = Explain(report, directory);
        if (failure is null && !options.KeepRunDirectory) TryDelete(directory);
        else AttachReports(directory);
        if (failure is not null) Assert.Fail(failure);
        return report;
    }

    /// <summary>The report files attached to the NUnit result of a test whose run directory is kept, with what each is.</summary>
    public static IReadOnlyList<(string File, string Description)> Attachments { get; } =
    [
        (Reporting.Html.HtmlReportExporter.FileName, "Parity report (open in a browser)"),
        ("report.json", "Parity report, machine-readable"),
        (Reporting.JUnit.JUnitReportExporter.FileName, "Parity results as JUnit XML"),
    ];

    // A kept run directory's report files are attached to the running test's result, so a CI system that keeps NUnit
    // attachments (dotnet test's TRX, Azure Pipelines, the NUnit console's result XML) shows the report beside the failure.
    private static void AttachReports(string directory)
    {
        foreach (var (file, description) in Attachments)
        {
            string path = Path.Combine(directory, file);
            if (File.Exists(path)) TestContext.AddTestAttachment(path, description);
        }
    }

    private static void TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temporary run directory is harmless.
        }
    }
}
