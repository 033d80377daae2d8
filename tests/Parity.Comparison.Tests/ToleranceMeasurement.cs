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
    [TestCase("synthetic-mlp-bn.json", 50)]
    [TestCase("synthetic-shared-bn.json", 50)]
    [TestCase("synthetic-layernorm-sgd.json", 50)]
    [TestCase("seed000-shared-bn.json", 20)]
    [TestCase("seed000-separate-bn.json", 20)]
    public void Measure_float32_rounding(string fixture, int steps)
    {
        string root = Path.Combine(Path.GetTempPath(), "parity-measure-" + Guid.NewGuid().ToString("N"));
        try
        {
            var plan = ReferenceRuns.Fixture(fixture, steps);
            var (f64, f32) = ReferenceRuns.Run(plan, root);
            var result = TraceComparer.Compare(f64, f32, TraceLayout.Of(plan), TolerancePolicy.Default);
            TestContext.Out.WriteLine($"{fixture}: verdict {result.Verdict}, {result.TensorsFailed} failed; first {result.FirstDivergence?.Origin}");
            TestContext.Out.WriteLine($"  not identifiable: {string.Join(", ", result.NotIdentifiable)}");
            foreach (var group in result.Checks.Where(c => c.Status == CheckStatus.Checked).GroupBy(c => c.Key.Kind).OrderBy(g => g.Key))
            {
                var worst = group.MaxBy(c => Relative(c));
                var worstGrown = group.MaxBy(c => Relative(c) / TolerancePolicy.Default.Growth(c.Step));
                var worstScore = group.MaxBy(c => c.Score);
                var worstLinear = group.MaxBy(c => Relative(c) / (1 + c.Step));
                TestContext.Out.WriteLine($"  {group.Key.Name(),-18} max rel {Relative(worst!):E2} ({worst!.Key}@{worst.Step})  max rel/g(s) {Relative(worstGrown!) / TolerancePolicy.Default.Growth(worstGrown!.Step):E2} ({worstGrown.Key}@{worstGrown.Step})  max score {worstScore!.Score:F3}  max rel/(1+s) {Relative(worstLinear!) / (1 + worstLinear!.Step):E2} ({worstLinear.Key}@{worstLinear.Step})");
            }
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, true);
        }
    }

    private static double Relative(TensorCheck c) => c.Metrics.ReferenceRms > 0 ? c.Metrics.Rmse / c.Metrics.ReferenceRms : c.Metrics.Rmse;
}
