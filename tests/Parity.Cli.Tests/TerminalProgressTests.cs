namespace Parity.Cli.Tests;

/// <summary>The progress of a whole run, on a log and on a terminal, under a clock the test moves (nothing here is timed).</summary>
public sealed class TerminalProgressTests
{
    /// <summary>A clock that moves only when the test says so.</summary>
    private sealed class ManualClock : TimeProvider
    {
        public TimeSpan Now { get; set; }

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Now.Ticks;
    }

    private static RunProgress Train(int item, string backend, int step, double seconds) =>
        new(backend, step, 10, TimeSpan.FromSeconds(seconds)) { Phase = RunPhase.Train, Item = item, Items = 3 };

    [Test]
    public void On_a_log_each_new_backend_and_phase_is_a_line_and_a_quiet_stretch_gets_a_line_every_few_seconds()
    {
        var clock = new ManualClock();
        var log = new StringWriter();
        var progress = new TerminalProgress(log, interactive: false, color: true, clock, tick: false) { Label = "seed000 " };

        progress.Report(Train(1, "reference", 0, 0));
        for (int step = 1; step <= 10; step++)
        {
            clock.Now += TimeSpan.FromSeconds(1);
            progress.Report(Train(1, "reference", step, step));
        }
        progress.Report(Train(2, "keras", 0, 0));
        clock.Now += TimeSpan.FromSeconds(2);
        progress.Report(new RunProgress("keras", 4, 10, TimeSpan.FromSeconds(2)) { Phase = RunPhase.Compare, Item = 1, Items = 1, Task = "step checks" });
        progress.Report(new RunProgress("", 0, 0, TimeSpan.Zero) { Phase = RunPhase.Diagnose, Task = "12 detectors" });
        // A long phase that reports nothing: the ticker still writes, once per interval and not more often.
        for (int second = 0; second < 12; second++)
        {
            clock.Now += TimeSpan.FromSeconds(1);
            progress.Tick();
        }
        progress.Clear();

        var lines = log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Is.EqualTo(new[]
        {
            "progress [0:00] seed000 backend 1 of 3 reference: starting",
            "progress [0:05] seed000 backend 1 of 3 reference: step 5/10 (50%), ETA 0:05",
            "progress [0:10] seed000 backend 1 of 3 reference: step 10/10 (100%)",
            "progress [0:10] seed000 backend 2 of 3 keras: starting",
            "progress [0:12] seed000 compare 1 of 1 keras (step checks): step 4/10 (40%), ETA 0:03",
            "progress [0:12] seed000 diagnose (12 detectors)",
            "progress [0:17] seed000 diagnose (12 detectors)",
            "progress [0:22] seed000 diagnose (12 detectors)",
        }));
        Assert.That(log.ToString(), Does.Not.Contain("\u001b").And.Not.Contain("\r"), "a log gets neither colour nor carriage returns");
    }

    [Test]
    public void Nothing_is_written_before_the_run_reports_and_after_it_is_cleared()
    {
        var clock = new ManualClock();
        var log = new StringWriter();
        var progress = new TerminalProgress(log, interactive: false, color: false, clock, tick: false);

        clock.Now += TimeSpan.FromMinutes(1);
        progress.Tick();
        progress.Report(Train(1, "reference", 1, 1));
        progress.Clear();
        clock.Now += TimeSpan.FromMinutes(1);
        progress.Tick();

        Assert.That(log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(1));
    }

    [TestCase(true, null, true)]
    [TestCase(true, "", true)]
    [TestCase(true, "1", false)]
    [TestCase(false, null, false)]
    public void The_phase_is_coloured_only_on_a_terminal_without_NO_COLOR(bool terminal, string? noColor, bool coloured)
    {
        var screen = new StringWriter();
        var progress = new TerminalProgress(screen, terminal, TerminalProgress.ColorAllowed(noColor), new ManualClock(), tick: false);

        progress.Report(Train(1, "reference", 3, 3));

        Assert.That(progress.Color, Is.EqualTo(coloured));
        Assert.That(screen.ToString().Contains('\u001b'), Is.EqualTo(coloured), screen.ToString());
        Assert.That(screen.ToString(), Does.Contain("backend 1 of 3 reference: step 3/10 (30%), ETA 0:07"));
    }

    [Test]
    public void A_name_cannot_smuggle_terminal_control_characters_into_the_line()
    {
        var screen = new StringWriter();
        var progress = new TerminalProgress(screen, interactive: true, color: false, new ManualClock(), tick: false) { Label = "evil\u001b]0;title\u0007 " };

        progress.Report(Train(1, "back\u001b[2Jend", 1, 1));

        Assert.That(screen.ToString(), Does.Not.Contain("\u001b").And.Contain("\\x1b"));
    }

    [TestCase(0, "0:00")]
    [TestCase(59, "0:59")]
    [TestCase(3599, "59:59")]
    [TestCase(3723, "1:02:03")]
    [TestCase(90061, "25:01:01")]
    public void Durations_keep_counting_past_an_hour_and_a_day(int seconds, string expected) =>
        Assert.That(TerminalProgress.Duration(TimeSpan.FromSeconds(seconds)), Is.EqualTo(expected));

    [Test]
    public void The_eta_of_a_long_backend_counts_hours()
    {
        // 100 of 10 000 steps in 45 s: 9 900 more at 0.45 s each.
        var text = TerminalProgress.Describe(new RunProgress("torchsharp", 100, 10_000, TimeSpan.FromSeconds(45)) { Item = 2, Items = 4 });

        Assert.That(text, Is.EqualTo("backend 2 of 4 torchsharp: step 100/10000 (1%), ETA 1:14:15"));
    }

    [Test]
    [NonParallelizable]
    public void A_run_whose_stderr_is_not_a_terminal_logs_every_phase_as_plain_lines()
    {
        Assume.That(Console.IsErrorRedirected, Is.True, "the test host's stderr is a pipe under dotnet test");
        var (exit, _, stderr) = CliRunner.Run("run", CliRunner.Fixture("synthetic-mlp-bn.json"), "--backends", "reference,reference-f32", "--steps", "3", "--out", CliRunner.TempDir());

        Assert.That(exit, Is.EqualTo(0), stderr);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("progress [", StringComparison.Ordinal)).ToList();
        Assert.That(lines, Has.Some.Match(@"synthetic-mlp-bn backend 1 of \d+ reference: starting"));
        Assert.That(lines, Has.Some.Match(@"backend 2 of \d+ reference-f32"));
        Assert.That(lines, Has.Some.Contain("compare 1 of 1 reference-f32 (trajectory)"));
        Assert.That(lines, Has.Some.Contain("compare 1 of 1 reference-f32 (step checks)"));
        Assert.That(lines, Has.Some.Contain("diagnose"));
        Assert.That(lines, Has.Some.Contain("report json (writing report files)"));
        Assert.That(stderr, Does.Not.Contain("\u001b").And.Not.Contain("\r"));
    }
}
