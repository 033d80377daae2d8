using Parity.Harness;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Parity.Backends;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Cli;

/// <summary>
/// <c>parity bench</c>: times <see cref="IBackendSession.Step"/> of several backends in one process on the
/// same plan, so ratios are taken on one machine in one run. The batch is gathered before the clock starts;
/// a step includes the capture copies asked for (full) or only the loss (off). Beside the wall time of a step it
/// records the CPU time this process spent in it (every thread): on a machine shared with other work the wall time
/// includes waiting for a core and the CPU time does not. A worker backend computes in its own process, so its
/// CPU time here counts only the exchange. After each step (outside its time) the record is released, as a run releases
/// it once written, so the next step's captures reuse the pooled arrays (<see cref="TensorPool"/>).
/// </summary>
internal static class BenchCommand
{
    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    // FrameworkMedianMs: the median of the framework's own step time as the session reports it (NaN when it does not);
    // StepToFramework: the median of each step's time over the framework's own time in it, what carrying a step costs;
    // CpuMedianMs: the median CPU time of this process per step (steadier than wall time on a shared machine).
    internal sealed record BenchResult(string Backend, string DType, string Capture, int Steps, double MedianMs, double P10Ms, double P90Ms, double RatioToFirst, string? Error,
        double FrameworkMedianMs = double.NaN, double StepToFramework = double.NaN, double CpuMedianMs = double.NaN)
    {
        /// <summary>With <c>--trace</c>: the trace written during the timed steps, measured (null without).</summary>
        public TraceFigures? Trace { get; init; }
    }

    // BytesPerStep: the whole trace (initial state included) over the training steps it holds; CompressionRatio: value
    // bytes over stored bytes of tensors.bin; ReadMBps: value bytes read and compared per second by the comparer (both
    // sides); DrainMs: the wait at the end for the records still queued; HandOverMs: the median time of a step's Write (in
    // its step time): the copy into the writer's buffers, plus any wait for a full queue.
    internal sealed record TraceFigures(double BytesPerStep, double CompressionRatio, double ReadMBps, double DrainMs, double HandOverMs);

    public static int Execute(ScenarioSpec spec, IReadOnlyList<string> backends, int steps, int warmup, string capture, string? device, string? jsonPath,
        BackendRegistry registry, TextWriter w, TraceCompression? trace = null)
    {
        if (steps < 1 || warmup < 0) throw new UsageException("--steps must be >= 1 and --warmup >= 0");
        if (capture is not ("full" or "off")) throw new UsageException($"--capture must be full or off (got '{capture}')");
        if ((long)steps + warmup > Planner.MaxSteps) throw new UsageException($"--steps plus --warmup must be at most {Planner.MaxSteps} (got {(long)steps + warmup})");
        var plan = Planner.Build(spec, steps + warmup);
        w.WriteLine($"bench {spec.Name}: {plan.Train.Features}-{string.Join("-", plan.Graph.Calls.Where(c => c.Layer is LinearSpec).Select(c => c.OutWidth))}, " +
            $"batch {spec.Data.BatchSize}, {spec.Optimizer.Type}, capture {capture}, {warmup} warm-up + {steps} timed steps, {Environment.ProcessorCount} cores");
        var results = new List<BenchResult>();
        foreach (string item in backends)
        {
            (string name, string display, var dtype) = StandardBackends.Resolve(registry, item, spec.DType);
            results.Add(TimeOne(plan, registry.Create(name), display, new BackendOptions(dtype, device), steps, warmup, capture, trace));
        }
        double baseline = results.FirstOrDefault(r => r.Error is null)?.MedianMs ?? double.NaN;
        results = results.Select(r => r with { RatioToFirst = r.MedianMs / baseline }).ToList();
        foreach (var r in results)
        {
            string framework = double.IsNaN(r.FrameworkMedianMs) ? ""
                : $"  framework {r.FrameworkMedianMs.ToString("F2", CultureInfo.InvariantCulture)} ms, step/framework x{r.StepToFramework.ToString("F2", CultureInfo.InvariantCulture)}";
            w.WriteLine(r.Error is null
                ? $"  {r.Backend,-16} {r.DType,-8} median {r.MedianMs,9:F2} ms  (p10 {r.P10Ms:F2}, p90 {r.P90Ms:F2})  x{r.RatioToFirst.ToString("F2", CultureInfo.InvariantCulture)} of {results[0].Backend}  cpu {r.CpuMedianMs:F2} ms{framework}"
                : $"  {r.Backend,-16} {r.DType,-8} error: {r.Error}");
            if (r.Trace is { } t)
                w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {"",-16} trace {Name(trace)}: {t.BytesPerStep / 1e6:F2} MB a step, values / stored x{t.CompressionRatio:F2}, comparer reads {t.ReadMBps:F0} MB/s, hand-over {t.HandOverMs:F2} ms a step"));
        }
        if (jsonPath is not null) File.WriteAllText(jsonPath, JsonSerializer.Serialize(results, JsonOptions));
        return results.Any(r => r.Error is not null) ? ExitCodes.Error : ExitCodes.Agree;
    }

    private static string Name(TraceCompression? trace) => trace == TraceCompression.Zstd ? "zstd" : "none";

    private static BenchResult TimeOne(Plan plan, IBackend backend, string display, BackendOptions options, int steps, int warmup, string capture,
        TraceCompression? traceCompression)
    {
        var description = backend.Describe();
        if (!description.Available) return new BenchResult(display, options.DType.Name(), capture, 0, double.NaN, double.NaN, double.NaN, double.NaN, description.Reason);
        try
        {
            using var session = backend.Open(plan, options);
            using var trace = traceCompression is { } compression ? new BenchTrace(display, options.DType.Name(), plan, compression) : null;
            // A written record goes to the trace writer, which releases it; otherwise it is released at once.
            void Done(StepRecord record, bool train)
            {
                if (trace is null) record.Release();
                else trace.Hand(record, train);
            }
            Done(session.ReadState(0), train: false);
            var times = new List<double>();
            var framework = new List<double>();
            var overheads = new List<double>();
            var cpuTimes = new List<double>();
            for (int step = 1; step <= warmup + steps; step++)
            {
                var batch = plan.BatchFor(step);
                var request = capture == "full" ? plan.CaptureFor(step) : CaptureRequest.ScalarsOnly;
                var cpuStart = Environment.CpuUsage.TotalTime; // getrusage on Unix: microseconds, not clock ticks
                long start = Stopwatch.GetTimestamp();
                Done(session.Step(step, batch, request), train: true);
                double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                double cpuMs = (Environment.CpuUsage.TotalTime - cpuStart).TotalMilliseconds;
                if (step <= warmup) continue;
                times.Add(ms);
                cpuTimes.Add(cpuMs);
                if (session is IFrameworkTimedSession timed && double.IsFinite(timed.LastFrameworkMs) && timed.LastFrameworkMs > 0)
                {
                    framework.Add(timed.LastFrameworkMs);
                    overheads.Add(ms / timed.LastFrameworkMs);
                }
            }
            var traceFigures = trace?.Finish(plan);
            times.Sort();
            cpuTimes.Sort();
            framework.Sort();
            overheads.Sort();
            return new BenchResult(display, options.DType.Name(), capture, steps, Quantile(times, 0.5), Quantile(times, 0.1), Quantile(times, 0.9), double.NaN, null,
                framework.Count == steps ? Quantile(framework, 0.5) : double.NaN, overheads.Count == steps ? Quantile(overheads, 0.5) : double.NaN, Quantile(cpuTimes, 0.5))
                { Trace = traceFigures };
        }
        catch (Exception e)
        {
            return new BenchResult(display, options.DType.Name(), capture, 0, double.NaN, double.NaN, double.NaN, double.NaN, $"{e.GetType().Name}: {e.Message}");
        }
    }

    private static double Quantile(List<double> sorted, double q)
    {
        double pos = q * (sorted.Count - 1);
        int lo = (int)Math.Floor(pos), hi = (int)Math.Ceiling(pos);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    }
}
