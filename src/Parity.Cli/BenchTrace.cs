using System.Diagnostics;
using Parity.Comparison;
using Parity.Planning;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Cli;

/// <summary>
/// <c>parity bench --trace zstd|none</c>: each step's record goes to a real <see cref="TraceWriter"/> (in a temporary
/// directory, removed afterwards) inside the timed step, as in a run; afterwards the trace's bytes per step, and the
/// comparer's read throughput on it (the trace opened, seal checked, and compared with itself by
/// <see cref="TraceComparer"/>, median of <see cref="ReadRepetitions"/>), and the median time a step spent handing its
/// record over (any wait for a full queue: the writer thread reads the record's values itself).
/// </summary>
internal sealed class BenchTrace : IDisposable
{
    private const int ReadRepetitions = 3;

    private readonly string _directory;
    private readonly TraceWriter _writer;
    private readonly List<double> _handOverMs = [];
    private int _steps;
    private long _valueBytes;

    public BenchTrace(string backend, string dtype, Plan plan, TraceCompression compression)
    {
        _directory = Path.Combine(Path.GetTempPath(), "parity-bench-trace-" + Guid.NewGuid().ToString("N"));
        _writer = TraceWriter.Create(_directory, new TraceHeader { Backend = backend, DType = dtype, Scenario = plan.Spec.Name, SpecHash = "bench" }, compression);
    }

    /// <summary>Hands one record to the writer, which releases it once written (what a run does after each step).</summary>
    public void Hand(StepRecord record, bool train)
    {
        foreach (var e in record.Entries) _valueBytes += (long)e.Value.Length * e.Value.DType.Size();
        long start = Stopwatch.GetTimestamp();
        _writer.WriteOwned(record);
        if (train) _handOverMs.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        if (train) _steps++;
    }

    /// <summary>Closes the trace and measures it: bytes written per step, values per stored byte, the comparer's MB/s.</summary>
    public BenchCommand.TraceFigures Finish(Plan plan)
    {
        long start = Stopwatch.GetTimestamp();
        _writer.UpdateHeader(h => h with { Status = RunStatus.Completed, StepsCompleted = _steps });
        double drainMs = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        _writer.Dispose();
        long bytes = TraceFiles.All.Sum(f => new FileInfo(Path.Combine(_directory, f)).Length);
        long stored = new FileInfo(Path.Combine(_directory, TraceFiles.Tensors)).Length;
        var layout = TraceLayout.Of(plan);
        var rates = new List<double>();
        for (int i = 0; i < ReadRepetitions; i++)
        {
            long t = Stopwatch.GetTimestamp();
            TraceComparer.Compare(TraceReader.Open(_directory), TraceReader.Open(_directory), layout, TolerancePolicy.Default);
            // Both sides read every value: twice the trace's values per comparison.
            rates.Add(2.0 * _valueBytes / 1e6 / Stopwatch.GetElapsedTime(t).TotalSeconds);
        }
        rates.Sort();
        _handOverMs.Sort();
        return new BenchCommand.TraceFigures((double)bytes / _steps, (double)_valueBytes / stored, rates[rates.Count / 2], drainMs, _handOverMs[_handOverMs.Count / 2]);
    }

    public void Dispose()
    {
        _writer.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A temporary trace left behind is harmless; the figures stand.
        }
    }
}
