using System.Diagnostics;
using System.Text.RegularExpressions;
using Parity.Reporting.Html;

namespace Parity.Reporting.Tests.Html;

/// <summary>
/// report.html in Debian's headless Chromium (installed by scripts/setup): a real report loads without console errors
/// (a blocked script, a blocked fetch and a JavaScript error all log one), shows the verdict table and the plots, and a
/// screenshot is taken (kept in the test's work directory); a report built from hostile strings runs no script.
/// </summary>
[NonParallelizable]
public sealed class ChromiumReportTests
{
    private const string Chromium = "/usr/bin/chromium";

    [SetUp]
    public void RequireChromium()
    {
        if (!File.Exists(Chromium)) Assert.Ignore($"{Chromium} is not installed (scripts/setup installs it)");
    }

    [Test]
    public async Task A_real_report_loads_without_console_errors_and_shows_the_verdict_table_and_plots()
    {
        string domOut = await LoadAndScreenshotAsync(RealRun.File("report.html"), "report-screenshot.png", 2000, "report.html rendered by headless Chromium");

        Assert.That(domOut, Does.Contain("<table id=\"verdicts\""));
        Assert.That(domOut, Does.Contain("reference-f32"));
        int differencePlots = RealRun.Report.Comparisons.Sum(c => c.Trajectory?.Differences.Count(d => d.Worst.Any(v => v != 0)) ?? 0);
        Assert.That(differencePlots, Is.GreaterThan(0), "the real run reports its difference from the reference");
        int expectedPlots = 1 + differencePlots + RealRun.Report.Series.Select(s => s.Name).Distinct().Count();
        Assert.That(Regex.Matches(domOut, "<svg").Count, Is.EqualTo(expectedPlots), "one heatmap, one difference plot per tensor kind and one plot per series");
        Assert.That(domOut, Does.Contain("<section id=\"differences\">").And.Contain("<table id=\"tolerances\""));
    }

    [Test]
    public async Task Every_kind_of_heatmap_cell_the_difference_plots_and_a_single_evaluation_render_in_the_browser()
    {
        using var dir = new TempDirectory();
        string path = new HtmlReportExporter().Export(ReportPlotsTests.WithPlots(), dir.Path);
        string domOut = await LoadAndScreenshotAsync(path, "plots-screenshot.png", 2600, "the plots of a diverging report rendered by headless Chromium");

        Assert.That(domOut, Does.Contain("ReLU kink flip downstream (excused, not counted)").And.Contain("explained by a declared mismatch (counted)"));
        Assert.That(Regex.Matches(domOut, "<figure class=\"plot difference\"><svg").Count, Is.EqualTo(2));
        Assert.That(domOut, Does.Contain("evaluated step"));
    }

    [Test]
    public async Task A_report_built_from_hostile_strings_runs_no_script_in_the_browser()
    {
        const string scriptAttack = "</script><script>document.body.className='pwned';console.error('pwned')</script>";
        const string attributeAttack = "\"><img src=x onerror=\"document.body.className='pwned'\">";
        var report = RealRun.Report with
        {
            Scenario = RealRun.Report.Scenario with { Name = scriptAttack + attributeAttack, Description = attributeAttack },
            Backends = [.. RealRun.Report.Backends.Select(b => b with { Message = "worker: " + scriptAttack })],
        };
        using var dir = new TempDirectory();
        string path = new HtmlReportExporter().Export(report, dir.Path);

        var (dom, log) = await RunAsync("--enable-logging=stderr", "--v=0", "--dump-dom", new Uri(path).AbsoluteUri);

        Assert.That(ConsoleLines(log), Is.Empty, "no script ran, none was even attempted");
        Assert.That(dom, Does.Not.Contain("class=\"pwned\""));
        Assert.That(dom, Does.Not.Contain("<script"));
        Assert.That(dom, Does.Not.Contain("<img"));
        Assert.That(dom, Does.Contain("document.body.className='pwned'"), "the hostile text is shown as text");
    }

    // Loads the page once for its DOM and console and once for a screenshot (kept in the test's work directory and
    // attached); asserts no console message and a screenshot with content; returns the DOM.
    private static async Task<string> LoadAndScreenshotAsync(string html, string screenshotName, int height, string description)
    {
        string screenshot = Path.Combine(TestContext.CurrentContext.WorkDirectory, screenshotName);
        File.Delete(screenshot);
        var dom = RunAsync("--enable-logging=stderr", "--v=0", "--dump-dom", new Uri(html).AbsoluteUri);
        var shot = RunAsync("--hide-scrollbars", $"--screenshot={screenshot}", $"--window-size=1400,{height}", new Uri(html).AbsoluteUri);
        var (domOut, domErr) = await dom;
        await shot;

        Assert.That(ConsoleLines(domErr), Is.Empty, $"console messages while loading {Path.GetFileName(html)}");
        Assert.That(new FileInfo(screenshot).Length, Is.GreaterThan(50_000), "a screenshot with content");
        TestContext.AddTestAttachment(screenshot, description);
        return domOut;
    }

    private static List<string> ConsoleLines(string log) =>
        log.Split('\n').Where(l => l.Contains(":CONSOLE", StringComparison.Ordinal) || l.Contains("Uncaught", StringComparison.Ordinal)).ToList();

    private static async Task<(string Stdout, string Stderr)> RunAsync(params string[] arguments)
    {
        string profile = Path.Combine(Path.GetTempPath(), "parity-chromium-" + Guid.NewGuid().ToString("N")[..10]);
        var start = new ProcessStartInfo(Chromium)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in new[] { "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", $"--user-data-dir={profile}" }.Concat(arguments))
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"chromium did not finish within 60 s: {string.Join(' ', arguments)}");
        }
        finally
        {
            try
            {
                Directory.Delete(profile, recursive: true);
            }
            catch (IOException)
            {
                // Chromium may still be releasing its profile; a leftover temp folder is harmless.
            }
        }
        return (await stdout, await stderr);
    }
}
