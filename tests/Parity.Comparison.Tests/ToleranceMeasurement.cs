using Parity.Tracing;

namespace Parity.Comparison.Tests;

/// <summary>
/// Prints the figures docs/tolerances.md quotes: per tensor kind, the largest normwise error
/// RMSE(f32, f64) / RMS(f64) of reference-f32 against reference over 50 steps, and that error divided by g(s).
/// Run: dotnet test tests/Parity.Comparison.Tests --filter Name~Measure_float32_rounding
/// </summary>
[Explicit("prints measurements for docs/tolerances.md")]
public class ToleranceMeasurement
{
    [TestCase("synthetic-mlp-bn.json")]
    [TestCase("synthetic-shared-bn.json")]
    [TestCase("synthetic-layernorm-sgd.json")]
    public void Measure_float32_rounding(string fixture)
    {
        string root = Path.Combine(Path.GetTempPath(), "parity-measure-" + Guid.NewGuid().ToString("N"));
        try
        {
            var plan = ReferenceRuns.Fixture(fixture, 50);
            var (f64, f32) = ReferenceRuns.Run(plan, root);
            var result = TraceComparer.Compare(f64, f32, plan.Graph, TolerancePolicy.Default);
            TestContext.Out.WriteLine($"{fixture}: verdict {result.Verdict}, {result.TensorsFailed} failed; first {result.FirstDivergence?.Origin}");
            foreach (var c in result.Checks.Where(c => c.Key.Kind == TensorKind.EvalLoss))
                TestContext.Out.WriteLine($"  evalLoss@{c.Step}: abs {c.Metrics.MaxAbs:E2} rel {c.Metrics.MaxRel:E2} value {c.Metrics.ReferenceRms:F6}");
            foreach (var group in result.Checks.Where(c => c.Status == CheckStatus.Checked).GroupBy(c => c.Key.Kind).OrderBy(g => g.Key))
            {
                var worst = group.MaxBy(c => Relative(c));
                var worstGrown = group.MaxBy(c => Relative(c) / TolerancePolicy.Default.Growth(c.Step));
                var worstScore = group.MaxBy(c => c.Score);
                TestContext.Out.WriteLine($"  {group.Key.Name(),-18} max rel {Relative(worst!):E2} ({worst!.Key}@{worst.Step})  max rel/g(s) {Relative(worstGrown!) / TolerancePolicy.Default.Growth(worstGrown!.Step):E2} ({worstGrown.Key}@{worstGrown.Step})  max score {worstScore!.Score:F3}");
            }
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, true);
        }
    }

    private static double Relative(TensorCheck c) => c.Metrics.ReferenceRms > 0 ? c.Metrics.Rmse / c.Metrics.ReferenceRms : c.Metrics.Rmse;
}
