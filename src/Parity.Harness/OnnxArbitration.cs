using Parity.Backends.OnnxRuntime;
using Parity.Comparison;
using Parity.Planning;
using Parity.Reporting;
using Parity.Running;
using Parity.Tensors;

namespace Parity.Harness;

/// <summary>
/// Runs the ONNX Runtime arbiter over every training backend's final checkpoint (docs/onnx.md): the backend's
/// own eval-mode outputs at that step against ORT's outputs for the same parameters and running statistics.
/// Both sides are the same dtype and the same state, so only operator order may differ: the check uses the
/// policy's tolerance for that dtype at step 0 (no growth). A failure is an inference-semantics error of the
/// backend (running statistics, eps placement, mode mix-up) that train-mode comparisons cannot see.
/// </summary>
public static class OnnxArbitration
{
    /// <summary>The name under which the arbiter is selected in <c>--backends</c>.</summary>
    public const string BackendName = "onnxruntime";

    /// <summary>Arbitrates each completed run; a run without a checkpoint that has an eval record is reported as such.</summary>
    /// <param name="plan">The plan the runs followed.</param>
    /// <param name="runs">The training backends' runs.</param>
    /// <param name="policy">The run's tolerance policy.</param>
    /// <param name="device">The run's <c>--device</c>: <c>cpu</c> keeps ONNX Runtime on the CPU provider; otherwise it takes CUDA when that loads.</param>
    public static IReadOnlyList<ArbiterReport> Check(Plan plan, IEnumerable<BackendRun> runs, TolerancePolicy policy, string? device = null)
    {
        var reports = new List<ArbiterReport>();
        foreach (var run in runs.Where(r => r.Status == RunStatus.Completed))
        {
            ArbiterCheck? check;
            try
            {
                check = OnnxArbiter.CheckTrace(plan, run.TraceDirectory, device);
            }
            catch (Exception e) when (e is Backends.BackendException or ArgumentException or InvalidDataException)
            {
                reports.Add(new ArbiterReport(run.Backend, 0, Verdict.Error, e.Message, []));
                continue;
            }
            if (check is null)
            {
                reports.Add(new ArbiterReport(run.Backend, 0, Verdict.Error,
                    "no step has both a fully captured state and an eval record (capture the last step and evaluate it)", []));
                continue;
            }
            var tensors = new List<ArbiterTensor>();
            foreach (var expected in check.Onnx.Entries)
            {
                if (check.Backend.Find(expected.Key.Kind, expected.Key.Site) is not { } actual)
                {
                    tensors.Add(new ArbiterTensor(expected.Key.ToString(), double.NaN, double.NaN, double.PositiveInfinity, false));
                    continue;
                }
                var tolerance = policy.ToleranceAt(expected.Key.Kind, 0, actual.DType, expected.Value.DType, Rms(expected.Value));
                var metrics = TensorMetrics.Of(actual, expected.Value, tolerance);
                var judgement = policy.Judge(metrics, tolerance, null);
                tensors.Add(new ArbiterTensor(expected.Key.ToString(), metrics.MaxAbs, metrics.MaxRel, judgement.Score, judgement.Passed));
            }
            bool agree = tensors.All(t => t.Passed);
            var worst = tensors.OrderByDescending(t => t.Score).FirstOrDefault();
            string? message = agree ? null : $"eval outputs differ from ONNX Runtime's for the same checkpoint, first at {tensors.First(t => !t.Passed).Tensor} (worst {worst?.Tensor}, score {worst?.Score:G3})";
            reports.Add(new ArbiterReport(run.Backend, check.Step, agree ? Verdict.Agree : Verdict.Diverge, message, tensors) { Runtime = check.Provider.RuntimeInfo });
        }
        return reports;
    }

    private static double Rms(Tensor t) => t.Length == 0 ? 0 : Math.Sqrt(t.Data.Sum(v => v * v) / t.Length);
}
