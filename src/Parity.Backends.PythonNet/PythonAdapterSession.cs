using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Parity.Backends.Workers;
using Parity.Data;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;
using Python.Runtime;

namespace Parity.Backends.PythonNet;

/// <summary>
/// One plan in an adapter session of <c>pythonnet_host.py</c>. Batches and the initial state are lent to Python as numpy
/// views of the harness's own arrays (pinned for the call); the adapter copies them into its framework's tensors. Each
/// answer comes back as keys, shapes and the addresses of Python's arrays, checked against the plan's
/// <see cref="TraceLayout"/> before the harness copies the elements into its own arrays (one copy, no Python per array).
/// Every call holds the GIL, and only for its length, under the session's time limit (<see cref="PythonWatchdog"/>).
/// </summary>
internal sealed class PythonAdapterSession : IFrameworkTimedSession
{
    private readonly string _backend;
    private readonly Plan _plan;
    private readonly TraceLayout _layout;
    private readonly DType _dtype;
    private readonly List<(int Step, double StepMs, double AdapterMs)> _timings = [];
    private readonly PythonWatchdog _watchdog;
    private PyObject? _session;
    private string? _interrupted;

    private PythonAdapterSession(string backend, Plan plan, DType dtype, TimeSpan limit)
    {
        _watchdog = new PythonWatchdog(limit);
        _backend = backend;
        _plan = plan;
        _layout = TraceLayout.Of(plan);
        _dtype = dtype;
    }

    public IReadOnlyList<ConventionMismatch> Mismatches { get; private set; } = [];

    public IReadOnlyDictionary<string, string> RuntimeInfo { get; private set; } = new Dictionary<string, string>();

    /// <summary>Per step: the whole <see cref="Step"/> as the harness sees it, and the adapter's own step inside it.</summary>
    public IReadOnlyList<(int Step, double StepMs, double AdapterMs)> Timings => _timings;

    /// <summary>The adapter's own last step, timed in Python around its <c>step</c>.</summary>
    public double LastFrameworkMs => _timings.Count == 0 ? double.NaN : _timings[^1].AdapterMs;

    /// <summary>Builds the adapter's session and, under injected init, loads the plan's initial state.</summary>
    public static PythonAdapterSession Open(string backend, string adapter, Plan plan, BackendOptions options, int? threads,
        IReadOnlyDictionary<string, string> versions)
    {
        // The worker's knob and default: an in-process call may take as long as a worker's request.
        var session = new PythonAdapterSession(backend, plan, options.DType, options.Timeout ?? WorkerProtocol.DefaultRequestTimeout);
        try
        {
            session.Build(adapter, options, threads, versions);
            if (plan.Spec.Init.Mode == InitMode.Injected) session.LoadState();
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    public StepRecord ReadState(int step) =>
        Answer("read_state", step, RecordPhase.Initial, CaptureRequest.StateOnly, rows: 0, s => s.InvokeMethod("read_state"));

    public StepRecord Step(int step, Batch batch, CaptureRequest capture)
    {
        long start = Stopwatch.GetTimestamp();
        var record = Answer($"step {step}", step, RecordPhase.Train, capture, batch.Size, s => Lend(batch, (x, y, t, width) => LendMasks(batch, (keys, masks) =>
            s.InvokeMethod("step", x, batch.Size.ToPython(), batch.Features.ToPython(), y, CaptureJson(capture, RecordPhase.Train).ToPython(), keys, masks,
                t, width))));
        double adapterMs = Call($"step {step}", () => Session.GetAttr("compute_ms").As<double>());
        _timings.Add((step, Stopwatch.GetElapsedTime(start).TotalMilliseconds, adapterMs));
        return record;
    }

    public StepRecord Evaluate(int step, Batch data, CaptureRequest capture) =>
        Answer($"evaluate after step {step}", step, RecordPhase.Eval, capture, data.Size, s => Lend(data, (x, y, t, width) => s.InvokeMethod("evaluate",
            x, data.Size.ToPython(), data.Features.ToPython(), y, CaptureJson(capture, RecordPhase.Eval).ToPython(), t, width)));

    public void Dispose()
    {
        _watchdog.Dispose();
        if (_session is null) return;
        using (Py.GIL()) _session.Dispose();
        _session = null;
    }

    /// <summary>
    /// One call into the adapter under the session's time limit. After a call was interrupted the adapter's state is
    /// whatever the interrupt left, so every later call is refused with the first one's reason.
    /// </summary>
    private T Call<T>(string what, Func<T> call)
    {
        if (_interrupted is not null) throw new BackendException($"'{_backend}' (in process) cannot run '{what}': an earlier call was interrupted ({_interrupted})");
        try
        {
            return PythonRuntime.Call(_backend, what, call, _watchdog);
        }
        catch (BackendException) when (_watchdog.Fired)
        {
            _interrupted = $"'{what}' ran past {_watchdog.Limit.TotalSeconds:0.###} s";
            throw;
        }
    }

    private PyObject Session => _session ?? throw new ObjectDisposedException(nameof(PythonAdapterSession));

    private void Build(string adapter, BackendOptions options, int? threads, IReadOnlyDictionary<string, string> versions)
    {
        string built = Call("build", () =>
        {
            using var host = Py.Import("pythonnet_host");
            using var sessionType = host.GetAttr("Session");
            _session = sessionType.Invoke(adapter.ToPython(), SpecWriter.Write(_plan.Spec).ToPython(), options.DType.Name().ToPython(),
                options.Device.ToPython(), threads.ToPython());
            using var answer = _session.InvokeMethod("built");
            return answer.As<string>();
        });
        using var doc = JsonDocument.Parse(built);
        Mismatches = [.. doc.RootElement.GetProperty("mismatches").EnumerateArray().Select(m => new ConventionMismatch(
            m.GetProperty("setting").GetString()!, m.GetProperty("spec").GetString()!, m.GetProperty("backend").GetString()!,
            [.. m.GetProperty("affects").EnumerateArray().Select(a => a.GetString()!)])
        {
            Value = m.TryGetProperty("value", out var v) ? System.Text.Json.Nodes.JsonNode.Parse(v.GetRawText()) : null,
        })];
        var runtime = versions.ToDictionary(StringComparer.Ordinal);
        foreach (var p in doc.RootElement.GetProperty("runtime").EnumerateObject()) runtime[p.Name] = p.Value.ToString();
        runtime["host"] = "in process (pythonnet)";
        RuntimeInfo = runtime;
    }

    private void LoadState()
    {
        var entries = _plan.InitialState.Entries;
        var handles = entries.Select(e => GCHandle.Alloc(e.Value.Data, GCHandleType.Pinned)).ToList();
        try
        {
            string keys = JsonSerializer.Serialize(entries.Select(e => new object[] { e.Key.Kind.Name(), e.Key.Site, e.Value.Shape }));
            Call("load_state", () =>
            {
                using var addresses = Addresses(handles);
                using var _ = Session.InvokeMethod("load_state", keys.ToPython(), addresses);
                return 0;
            });
        }
        finally
        {
            foreach (var h in handles) h.Free();
        }
    }

    /// <summary>
    /// The batch's inputs and labels pinned and lent to <paramref name="call"/> as their addresses, with its float targets
    /// and their width when the loss compares with the data's own targets (else address 0: the adapter derives them).
    /// </summary>
    private PyObject Lend(Batch batch, Func<PyObject, PyObject, PyObject, PyObject, PyObject> call)
    {
        var lent = _plan.Spec.Loss.Targets == TargetSource.Data ? batch.Targets : null;
        var inputs = GCHandle.Alloc(batch.Inputs.Data, GCHandleType.Pinned);
        var labels = GCHandle.Alloc(batch.Labels, GCHandleType.Pinned);
        var targets = lent is null ? default : GCHandle.Alloc(lent.Data, GCHandleType.Pinned);
        try
        {
            using var x = inputs.AddrOfPinnedObject().ToInt64().ToPython();
            using var y = labels.AddrOfPinnedObject().ToInt64().ToPython();
            using var t = (lent is null ? 0L : targets.AddrOfPinnedObject().ToInt64()).ToPython();
            using var width = (lent is null ? 0 : lent.Shape[1]).ToPython();
            return call(x, y, t, width);
        }
        finally
        {
            inputs.Free();
            labels.Free();
            if (lent is not null) targets.Free();
        }
    }

    /// <summary>The batch's dropout masks pinned and lent to <paramref name="call"/>: their call ids and shapes as JSON, and their addresses.</summary>
    private static PyObject LendMasks(Batch batch, Func<PyObject, PyObject, PyObject> call)
    {
        var masks = batch.DropoutMasks.ToList();
        var handles = masks.Select(m => GCHandle.Alloc(m.Value.Data, GCHandleType.Pinned)).ToList();
        try
        {
            using var keys = JsonSerializer.Serialize(masks.Select(m => new object[] { m.Key, m.Value.Shape })).ToPython();
            using var addresses = Addresses(handles);
            return call(keys, addresses);
        }
        finally
        {
            foreach (var h in handles) h.Free();
        }
    }

    private static string CaptureJson(CaptureRequest capture, RecordPhase phase) =>
        JsonSerializer.Serialize(capture.Kinds.Where(k => k.IsEval() == (phase == RecordPhase.Eval)).Order().Select(k => k.Name()));

    /// <summary>
    /// One call that answers entries: the keys and shapes are checked against the layout first, then each answer array's
    /// elements are copied from the address Python gives straight into a new harness array (the one copy; Python holds
    /// its arrays until the next call), and the record is checked like a worker's answer.
    /// </summary>
    private StepRecord Answer(string what, int step, RecordPhase phase, CaptureRequest capture, int rows, Func<PyObject, PyObject> call)
    {
        return Call(what, () =>
        {
            string keys;
            using (var answer = call(Session)) keys = answer.As<string>();
            var record = new StepRecord(step, phase);
            using (var doc = JsonDocument.Parse(keys))
            {
                foreach (var e in doc.RootElement.EnumerateArray())
                {
                    string name = e[0].GetString() ?? "";
                    var kind = TensorKinds.TryParse(name) ?? throw Broken(what, $"it answered an unknown tensor kind '{name}'");
                    var key = new TensorKey(kind, e[1].GetString() ?? "");
                    int[] shape = [.. e[2].EnumerateArray().Select(d => d.GetInt32())];
                    if (_layout.ShapeOf(key, rows) is not int[] expected || !expected.AsSpan().SequenceEqual(shape))
                        throw Broken(what, $"it answered {key} of shape [{string.Join(",", shape)}], which this model does not have");
                    if (record.Find(kind, key.Site) is not null) throw Broken(what, $"it answered {key} twice");
                    record.Add(kind, key.Site, Copy(e[3].GetString(), e[4].GetInt64(), shape));
                }
            }
            if (_layout.Problem(record, capture, rows) is string problem) throw Broken(what, problem);
            return _layout.Canonical(record);
        });
    }

    /// <summary>
    /// The host's contiguous array of <paramref name="shape"/> at <paramref name="address"/> (float32 or float64, native byte
    /// order: <c>pythonnet_host.exchangeable</c>) copied into a harness tensor of the run's dtype; float32 widens exactly.
    /// </summary>
    private unsafe Tensor Copy(string? dtype, long address, int[] shape)
    {
        int count = shape.Aggregate(1, (a, b) => a * b);
        if (count == 0) return new Tensor(shape, [], _dtype);
        return dtype switch
        {
            "float32" => Tensor.Copied(new ReadOnlySpan<float>((void*)address, count), shape, _dtype),
            "float64" => Tensor.Copied(new ReadOnlySpan<double>((void*)address, count), shape, _dtype),
            _ => throw new InvalidOperationException($"the in-process host answered an array of dtype '{dtype}' (pythonnet_host.exchangeable gives float32 or float64)"),
        };
    }

    private static PyList Addresses(List<GCHandle> handles) => new([.. handles.Select(h => (PyObject)h.AddrOfPinnedObject().ToInt64().ToPython())]);

    private BackendException Broken(string what, string problem) => new($"'{_backend}' (in process) answered '{what}' wrongly: {problem}");
}
