using Parity.Backends;
using Parity.Comparison;

namespace Parity.Reporting.Tests;

/// <summary>Hand-built reports for the exporters: a divergence with a finding, and hostile strings everywhere text enters.</summary>
internal static class SampleReports
{
    public const string ScriptAttack = "</script><script>alert(1)</script>";
    public const string AttributeAttack = "\"><img src=x onerror=alert(1)>";

    /// <summary>A run where <c>torchsharp</c> diverges at step 3, forward:l2 (origin), with a finding and a declared mismatch.</summary>
    public static RunReport Diverging(string scenarioName = "sample-shared-bn", string workerMessage = "worker said hello")
    {
        var metrics = new MetricsReport(0.5, 0.25, 12, 640, 0.1, 0.99, 42.0, WorstIndex: 37, Shape: [64, 10], Atol: 1e-7, Rtol: 2e-5);
        var divergence = new DivergenceReport(3, "train", "forward", "l2", "origin", metrics, ["forward:l1", "parameter:l2.weight"], [], []);
        var heatmap = new HeatmapReport(["forward:l1", "forward:l2", "loss"], [1, 2, 3, 4],
            [[0.01, 0.02, 0.03, 0.04], [0.1, 0.5, 42.0, null], [0.001, 0.002, double.PositiveInfinity, 3.0]]);
        return new RunReport
        {
            Scenario = new ScenarioInfo(scenarioName, "A report made by hand. " + ScriptAttack, "abcdef0123456789abcdef", "fixtures/x.json", "float32",
                4, 10, 640, 200, "synthetic teacher", ["bn"], ["l1.bias"]),
            Machine = new MachineInfo("Debian 12", 2, "10.0.0", "1.0.0", new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero), 1.5),
            Reference = "reference",
            TolerancePolicy = TolerancePolicy.Create().Describe(),
            Backends =
            [
                new BackendReport("reference", "float64", RunStatus.Completed, null, 4, 0.2, new Dictionary<string, string> { ["parity-reference"] = "1.0" }, [], "traces/reference", false),
                new BackendReport("torchsharp", "float32", RunStatus.Completed, workerMessage, 4, 0.7, new Dictionary<string, string> { ["torchsharp"] = "0.107.0" },
                    [new ConventionMismatch("layers[bn].runningVariance", "unbiased", "biased " + AttributeAttack, ["runningVariance"])], "traces/torchsharp", false),
                new BackendReport("keras", "float32", RunStatus.Unavailable, "node is not installed", 0, 0, new Dictionary<string, string>(), [], "traces/keras", false),
            ],
            Comparisons =
            [
                new ComparisonReport("torchsharp", "reference", Verdict.Diverge, null, divergence, 4, 120, 7, ["l1.bias"], heatmap),
                new ComparisonReport("keras", "reference", Verdict.Error, "keras did not run: node is not installed", null, 0, 0, 0, [], new HeatmapReport([], [], [])),
            ],
            Matrix = [new PairReport("reference", "torchsharp", Verdict.Diverge, 3, "forward:l2")],
            Findings =
            [
                new FindingReport("shared-stateful-instance", "torchsharp", "bn", "one batchnorm instance is called at two sites " + ScriptAttack,
                    new Dictionary<string, object?> { ["calls"] = 2, ["evalGap"] = 0.18, ["note"] = AttributeAttack }, "give each call its own instance"),
            ],
            Arbitration = [new ArbiterReport("torchsharp", 4, Verdict.Diverge, "eval outputs differ " + AttributeAttack, [new ArbiterTensor("evalOutput:l2", 0.1, 0.2, 5, false)])],
            Series =
            [
                new SeriesReport("reference", "loss", [1, 2, 3, 4], [1.6, 1.4, 1.2, 1.0]),
                new SeriesReport("torchsharp", "loss", [1, 2, 3, 4], [1.6, 1.4, 1.3, double.NaN]),
                new SeriesReport("reference", "runningMean:bn", [1, 2, 3, 4], [0.0, 0.1, 0.15, 0.2]),
                new SeriesReport("torchsharp", "runningMean:bn", [1, 2, 3, 4], [0.0, 0.2, 0.3, 0.4]),
                new SeriesReport("reference", "norm:l1.weight", [1, 2, 3, 4], [5.0, 5.1, 5.2, 5.3]),
            ],
            ExitCode = 2,
            Verdict = Verdict.Error,
        };
    }
}
