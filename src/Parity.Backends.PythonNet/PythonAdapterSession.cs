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
/// answer comes back as the addresses of Python's arrays and the number of their layout (keys, shapes, dtypes), checked
/// against the plan's <see cref="TraceLayout"/> before the harness copies the elements into its own arrays (one copy, no
/// Python per array). For an adapter whose step arrays are fresh, a step's arrays other than the state and the scalars
/// are copied by a <see cref="TensorFill"/> while the next step runs; the state is copied at once, since the next step
/// changes it in place, and so are the scalars, which the runner reads at once.
/// Every call holds the GIL, and only for its length, under the session's time limit (<see cref="PythonWatchdog"/>).
/// </summary>
internal sealed class PythonAdapterSession : IFrameworkTimedSession
{
    private readonly string _backend;
    private readonly Plan _plan;
    private readonly TraceLayout _layout;
    private readonly DType _dtype;
    private const int MaxLayouts = 64; // pythonnet_host.LAYOUTS
    private readonly List<(int Step, double StepMs, double AdapterMs)> _timings = [];
    private readonly PythonWatchdog _watchdog;
    private readonly SortedDictionary<int, AnswerLayout> _layouts = []; // the host's latest, by number (pythonnet_host.LAYOUTS)
    private readonly Dictionary<ulong, string> _captureJson = []; // by the bits of the kinds asked for
    private PyObject? _session;
    private bool _freshStepArrays;
    private TensorFill? _filling;
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
        Answer("read_state", step, RecordPhase.Initial, CaptureRequest.StateOnly, rows: 0, (s, _) => s.InvokeMethod("read_state")).Record;

    public StepRecord Step(int step, Batch batch, CaptureRequest capture)
    {
        long start = Stopwatch.GetTimestamp();
        var (record, adapterMs) = Answer($"step {step}", step, RecordPhase.Train, capture, batch.Size, (s, kinds) => Lend(batch, (x, y, t, width) =>
            LendMasks(batch, (keys, masks) => s.InvokeMethod("step", x, batch.Size.ToPython(), batch.Features.ToPython(), y, kinds, keys, masks, t, width))));
        _timings.Add((step, Stopwatch.GetElapsedTime(start).TotalMilliseconds, adapterMs));
        return record;
    }

    public StepRecord Evaluate(int step, Batch data, CaptureRequest capture) =>
        Answer($"evaluate after step {step}", step, RecordPhase.Eval, capture, data.Size, (s, kinds) => Lend(data, (x, y, t, width) => s.InvokeMethod("evaluate",
            x, data.Size.ToPython(), data.Features.ToPython(), y, kinds, t, width))).Record;

    public void Dispose()
    {
        try
        {
            Settle(); // the copy out of Python's last arrays ends before Python frees them
        }
        finally
        {
            _watchdog.Dispose();
            if (_session is not null)
            {
                using (Py.GIL()) _session.Dispose();
                _session = null;
            }
        }
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
        _freshStepArrays = doc.RootElement.TryGetProperty("freshStepArrays", out var fresh) && fresh.ValueKind == JsonValueKind.True;
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

    /// <summary>The kinds of <paramref name="phase"/> that <paramref name="capture"/> asks for, as the host reads them (a JSON list of names).</summary>
    private string CaptureJson(CaptureRequest capture, RecordPhase phase)
    {
        ulong kinds = 0;
        foreach (var k in capture.Kinds)
            if (k.IsEval() == (phase == RecordPhase.Eval)) kinds |= 1UL << (int)k;
        if (!_captureJson.TryGetValue(kinds, out string? json))
            _captureJson[kinds] = json = JsonSerializer.Serialize(capture.Kinds.Where(k => k.IsEval() == (phase == RecordPhase.Eval)).Order().Select(k => k.Name()));
        return json;
    }

    /// <summary>
    /// One call that answers entries, and the adapter's own step time in it (NaN outside a step). The answer gives each
    /// array's address and the number of its layout: the kinds, sites, shapes and dtypes, described the first time. A
    /// layout is checked against the plan's <see cref="TraceLayout"/> once for each phase, capture and row count, as a
    /// worker's answer is; then each array's elements are copied from its address straight into a new harness array, in
    /// canonical order (the one copy; Python holds its arrays through the next call).
    /// </summary>
    private (StepRecord Record, double AdapterMs) Answer(string what, int step, RecordPhase phase, CaptureRequest capture, int rows,
        Func<PyObject, PyObject, PyObject> call)
    {
        string captureJson = CaptureJson(capture, phase);
        return Call(what, () =>
        {
            string text;
            try
            {
                using var kinds = captureJson.ToPython();
                using var answer = call(Session, kinds);
                text = answer.As<string>();
            }
            finally
            {
                // Python drops the last answer's arrays in its next call: the copy out of them ends before that call.
                Settle();
            }
            using var doc = JsonDocument.Parse(text);
            var root = doc.RootElement;
            var layout = CheckedLayout(what, root, phase, capture, captureJson, rows);
            var addresses = root.GetProperty("addresses");
            if (addresses.GetArrayLength() != layout.Entries.Length)
                throw Broken(what, $"it gave {addresses.GetArrayLength()} addresses for the {layout.Entries.Length} entries of its layout");
            var at = new long[layout.Entries.Length];
            int n = 0;
            foreach (var a in addresses.EnumerateArray()) at[n++] = a.GetInt64();
            var record = new StepRecord(step, phase);
            var now = new List<(Tensor Tensor, bool Float32, long Address)>();
            var later = new List<(Tensor Tensor, bool Float32, long Address)>();
            foreach (int i in layout.Canonical)
            {
                var (key, shape, float32) = layout.Entries[i];
                var tensor = Tensor.Pooled(shape, _dtype);
                // The state changes in place in the next step; a fresh array of the adapter's does not, and is copied beside it.
                // Scalars are copied at once: the runner reads the loss as soon as the step returns.
                bool beside = _freshStepArrays && phase == RecordPhase.Train && !key.Kind.IsState() && !key.Kind.IsScalar();
                (beside ? later : now).Add((tensor, float32, at[i]));
                record.Add(key.Kind, key.Site, tensor);
            }
            if (later.Count > 0) _filling = TensorFill.Start([.. later.Select(l => l.Tensor)], (i, target) => CopyInto(later[i].Float32, later[i].Address, target));
            foreach (var (tensor, float32, address) in now) CopyInto(float32, address, tensor.Data);
            double adapterMs = root.GetProperty("computeMs") is { ValueKind: JsonValueKind.Number } ms ? ms.GetDouble() : double.NaN;
            return (record, adapterMs);
        });
    }

    /// <summary>The answer's layout, described now or earlier in this session, checked for this phase, capture and row count.</summary>
    private AnswerLayout CheckedLayout(string what, JsonElement answer, RecordPhase phase, CaptureRequest capture, string captureJson, int rows)
    {
        int number = answer.GetProperty("layout").GetInt32();
        if (answer.GetProperty("entries") is { ValueKind: JsonValueKind.Array } described)
        {
            _layouts[number] = Describe(what, described, rows);
            // The host numbers its layouts upwards and forgets them all when it holds too many: the latest are all it can name.
            while (_layouts.Count > MaxLayouts) _layouts.Remove(_layouts.Keys.First());
        }
        if (!_layouts.TryGetValue(number, out var layout)) throw Broken(what, $"it answered layout {number} without describing it");
        if (layout.CheckedFor.Add((phase, captureJson, capture.Filter, rows)))
        {
            if (_layout.Problem(phase, layout.Entries.Select(e => (e.Key, e.Shape)), capture, rows) is string problem)
            {
                layout.CheckedFor.Clear();
                throw Broken(what, problem);
            }
        }
        return layout;
    }

    /// <summary>A layout as the host describes it: each entry's kind, site, shape and dtype, known to this model.</summary>
    private AnswerLayout Describe(string what, JsonElement described, int rows)
    {
        var entries = new List<(TensorKey Key, int[] Shape, bool Float32)>();
        foreach (var e in described.EnumerateArray())
        {
            string name = e[0].GetString() ?? "";
            var kind = TensorKinds.TryParse(name) ?? throw Broken(what, $"it answered an unknown tensor kind '{name}'");
            var key = new TensorKey(kind, e[1].GetString() ?? "");
            int[] shape = [.. e[2].EnumerateArray().Select(d => d.GetInt32())];
            if (_layout.ShapeOf(key, rows) is not int[] expected || !expected.AsSpan().SequenceEqual(shape))
                throw Broken(what, $"it answered {key} of shape [{string.Join(",", shape)}], which this model does not have");
            if (entries.Exists(other => other.Key == key)) throw Broken(what, $"it answered {key} twice");
            bool float32 = e[3].GetString() switch
            {
                "float32" => true,
                "float64" => false,
                var other => throw Broken(what, $"it answered {key} as '{other}' (pythonnet_host.exchangeable gives float32 or float64)"),
            };
            entries.Add((key, shape, float32));
        }
        var canonical = _layout.InOrder(entries.Select(e => e.Key));
        return new AnswerLayout([.. entries], [.. canonical.Select(k => entries.FindIndex(e => e.Key == k))]);
    }

    /// <summary>
    /// The host's contiguous array at <paramref name="address"/> (float32 or float64, native byte order) copied into
    /// <paramref name="target"/>, of its length; float32 widens exactly.
    /// </summary>
    private static unsafe void CopyInto(bool float32, long address, double[] target)
    {
        if (float32) FloatConversion.Widen(new ReadOnlySpan<float>((void*)address, target.Length), target);
        else new ReadOnlySpan<double>((void*)address, target.Length).CopyTo(target);
    }

    /// <summary>Waits for the copy out of the last answer's arrays, when one still runs.</summary>
    private void Settle()
    {
        var filling = _filling;
        _filling = null;
        filling?.Wait();
    }

    /// <summary>
    /// An answer's entries in the host's order, the order of their indices in the canonical record, and the phases,
    /// captures and row counts it was checked for.
    /// </summary>
    private sealed record AnswerLayout((TensorKey Key, int[] Shape, bool Float32)[] Entries, int[] Canonical)
    {
        public HashSet<(RecordPhase Phase, string Capture, CaptureFilter? Filter, int Rows)> CheckedFor { get; } = [];
    }

    private static PyList Addresses(List<GCHandle> handles) => new([.. handles.Select(h => (PyObject)h.AddrOfPinnedObject().ToInt64().ToPython())]);

    private BackendException Broken(string what, string problem) => new($"'{_backend}' (in process) answered '{what}' wrongly: {problem}");
}
