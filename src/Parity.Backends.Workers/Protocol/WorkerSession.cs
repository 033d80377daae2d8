using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Parity.Data;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Backends.Workers.Protocol;

/// <summary>
/// A plan running in a worker: <c>build</c> (and <c>load_state</c> under injected init) when opened,
/// then <c>read_state</c>, <c>step</c> and <c>evaluate</c>. Every answer is checked against the plan's
/// <see cref="TraceLayout"/> (every asked-for key present once, in the right answer, shapes right, values finite
/// where they must be) before it becomes a <see cref="StepRecord"/>, so a worker in any language gets the same
/// scrutiny. A protocol 1 worker is never asked for the optimizer state (<see cref="BackendCapabilities.OptimizerState"/>).
/// </summary>
internal sealed class WorkerSession : IFrameworkTimedSession
{
    private readonly WorkerProcess _worker;
    private readonly Plan _plan;
    private readonly TraceLayout _layout;
    private readonly bool _optimizerState;
    private readonly DType _dtype;
    private readonly TimeSpan _timeout;
    private readonly long _fileThreshold;
    private readonly ExchangeDirectory _exchange = new();
    private readonly List<StepTiming> _timings = [];
    private readonly List<string> _requestFiles = [];

    private WorkerSession(WorkerProcess worker, Plan plan, DType dtype, TimeSpan timeout, long fileThreshold)
    {
        _worker = worker;
        _plan = plan;
        _layout = TraceLayout.Of(plan);
        _optimizerState = worker.Hello?.Capabilities.OptimizerState ?? false;
        _dtype = dtype;
        _timeout = timeout;
        _fileThreshold = fileThreshold;
    }

    public IReadOnlyList<ConventionMismatch> Mismatches { get; private set; } = [];

    public IReadOnlyDictionary<string, string> RuntimeInfo { get; private set; } = new Dictionary<string, string>();

    /// <summary>Per step: the harness's round trip and the worker's own <c>computeMs</c> (NaN when not reported).</summary>
    public IReadOnlyList<StepTiming> Timings => _timings;

    public double LastFrameworkMs => _timings.Count == 0 ? double.NaN : _timings[^1].ComputeMs;

    /// <summary>Sends <c>build</c> and, under injected init, <c>load_state</c>.</summary>
    public static WorkerSession Open(WorkerProcess worker, Plan plan, BackendOptions options, TimeSpan timeout, long fileThreshold, int? threads)
    {
        var session = new WorkerSession(worker, plan, options.DType, timeout, fileThreshold);
        try
        {
            session.Build(options, threads);
            if (plan.Spec.Init.Mode == InitMode.Injected) session.LoadState();
            return session;
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    public StepRecord ReadState(int step)
    {
        using var doc = Exchange("read_state", w => w.WriteNumber("step", step));
        var record = Decode(doc.RootElement, step, RecordPhase.Initial, Asked(CaptureRequest.StateOnly, RecordPhase.Initial), "read_state", rows: 0);
        foreach (var e in record.Entries)
            if (e.Value.Data.Any(v => !double.IsFinite(v)))
                throw _worker.Fatal($"its read_state answer has a non-finite value in {e.Key}: initial state must be finite");
        return record;
    }

    public StepRecord Step(int step, Batch batch, CaptureRequest capture)
    {
        var clock = Stopwatch.StartNew();
        capture = Asked(capture, RecordPhase.Train);
        using var doc = Exchange("step", w => WriteBatch(w, step, batch, capture));
        var record = Decode(doc.RootElement, step, RecordPhase.Train, capture, $"step {step}", batch.Size);
        clock.Stop();
        double computeMs = doc.RootElement.TryGetProperty("computeMs", out var c) && c.ValueKind == JsonValueKind.Number ? c.GetDouble() : double.NaN;
        _timings.Add(new StepTiming(step, clock.Elapsed.TotalMilliseconds, computeMs, _worker.LastExchange.WriteMs, _worker.LastExchange.WaitMs));
        return record;
    }

    public StepRecord Evaluate(int step, Batch data, CaptureRequest capture)
    {
        capture = Asked(capture, RecordPhase.Eval);
        using var doc = Exchange("evaluate", w => WriteBatch(w, step, data, capture));
        return Decode(doc.RootElement, step, RecordPhase.Eval, capture, $"evaluate after step {step}", data.Size);
    }

    public void Dispose()
    {
        _worker.Dispose();
        _exchange.Dispose();
    }

    private void Build(BackendOptions options, int? threads)
    {
        using var doc = _worker.Request("build", w =>
        {
            w.WritePropertyName("spec");
            // Written from the spec object, not CanonicalJson (a spec changed with `with` keeps stale text),
            // and re-emitted compact: the canonical text is indented and a request must be one line.
            using var spec = JsonDocument.Parse(SpecWriter.Write(_plan.Spec));
            spec.RootElement.WriteTo(w);
            w.WriteString("dtype", options.DType.Name());
            if (options.Device is null) w.WriteNull("device");
            else w.WriteString("device", options.Device);
            if (threads is int t) w.WriteNumber("threads", t);
            else w.WriteNull("threads");
            w.WriteString("exchangeDirectory", FileDirectory());
            w.WriteNumber("fileThreshold", _fileThreshold);
        }, _timeout);
        var root = doc.RootElement;
        var mismatches = new List<ConventionMismatch>();
        if (root.TryGetProperty("mismatches", out var ms) && ms.ValueKind == JsonValueKind.Array)
        {
            foreach (var m in ms.EnumerateArray())
            {
                string Field(string key) => m.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String
                    ? v.GetString()!
                    : throw _worker.Fatal($"a mismatch in its build answer lacks the string \"{key}\": {m.GetRawText()}");
                var affects = m.TryGetProperty("affects", out var a) && a.ValueKind == JsonValueKind.Array
                    ? a.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString()!
                        : throw _worker.Fatal($"a mismatch in its build answer has {WorkerProcess.Preview(x.GetRawText())} in \"affects\"; expected tensor kind names (strings)")).ToList()
                    : [];
                foreach (string kind in affects)
                    if (TensorKinds.TryParse(kind) is null) throw _worker.Fatal($"a mismatch in its build answer names an unknown tensor kind '{kind}'");
                // "value": the canonical spec value the framework computes instead, any JSON value (protocol 2).
                var value = m.TryGetProperty("value", out var v) ? JsonNode.Parse(v.GetRawText()) : null;
                mismatches.Add(new ConventionMismatch(Field("setting"), Field("spec"), Field("backend"), affects) { Value = value });
            }
        }
        Mismatches = mismatches;
        var runtime = new Dictionary<string, string>(_worker.Hello?.Versions ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        if (root.TryGetProperty("runtime", out var rt) && rt.ValueKind == JsonValueKind.Object)
            foreach (var p in rt.EnumerateObject()) runtime[p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText();
        RuntimeInfo = runtime;
    }

    private void LoadState()
    {
        Exchange("load_state", w =>
        {
            w.WriteStartArray("entries");
            foreach (var e in _plan.InitialState.Entries) WriteEntry(w, e.Key, e.Value);
            w.WriteEndArray();
        }).Dispose();
    }

    /// <summary>One request; the files it wrote to the exchange directory are removed once it is answered.</summary>
    private JsonDocument Exchange(string op, Action<Utf8JsonWriter> body)
    {
        try
        {
            return _worker.Request(op, body, _timeout);
        }
        finally
        {
            foreach (string file in _requestFiles) TryDelete(file);
            _requestFiles.Clear();
        }
    }

    private static void TryDelete(string file)
    {
        try
        {
            File.Delete(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The directory goes at Dispose.
        }
    }

    private void WriteEntry(Utf8JsonWriter w, TensorKey key, Tensor value)
    {
        w.WriteStartObject();
        w.WriteString("kind", key.Kind.Name());
        w.WriteString("site", key.Site);
        _requestFiles.AddRange(TensorCodec.Write(w, "tensor", value, _dtype, _fileThreshold, FileDirectory()));
        w.WriteEndObject();
    }

    private void WriteBatch(Utf8JsonWriter w, int step, Batch batch, CaptureRequest capture)
    {
        w.WriteNumber("step", step);
        // Inputs are float32 values for every backend (identical bytes); a float64 worker widens them exactly.
        _requestFiles.AddRange(TensorCodec.Write(w, "inputs", batch.Inputs, DType.Float32, _fileThreshold, FileDirectory()));
        w.WriteStartArray("labels");
        foreach (int y in batch.Labels) w.WriteNumberValue(y);
        w.WriteEndArray();
        if (batch.DropoutMasks.Count > 0)
        {
            // The harness's 0/1 mask of each dropout call, float32 like the inputs (docs/worker-protocol.md).
            w.WriteStartObject("dropoutMasks");
            foreach (var (call, mask) in batch.DropoutMasks)
                _requestFiles.AddRange(TensorCodec.Write(w, call, mask, DType.Float32, _fileThreshold, FileDirectory()));
            w.WriteEndObject();
        }
        // Float targets travel only when the loss compares with the data's own (labels and inputs the worker already has).
        if (_plan.Spec.Loss.Targets == TargetSource.Data && batch.Targets is { } targets)
            _requestFiles.AddRange(TensorCodec.Write(w, "targets", targets, DType.Float32, _fileThreshold, FileDirectory()));
        w.WriteStartArray("capture");
        foreach (var k in capture.Kinds.OrderBy(k => k)) w.WriteStringValue(k.Name());
        w.WriteEndArray();
    }

    private string FileDirectory() => _exchange.Create();

    /// <summary>
    /// The kinds of <paramref name="capture"/> a worker is asked for in an answer of <paramref name="phase"/>: eval kinds of
    /// evaluate only, the others of step and read_state only, and no optimizer state of a protocol 1 worker.
    /// </summary>
    private CaptureRequest Asked(CaptureRequest capture, RecordPhase phase) => new(new HashSet<TensorKind>(capture.Kinds.Where(k =>
        k.IsEval() == (phase == RecordPhase.Eval) && (_optimizerState || !k.IsOptimizerState()))));

    /// <summary>
    /// Reads <c>entries</c> into a record in canonical order, every key checked against the layout before its tensor is read
    /// (a key of this model and of this answer's phase, once), then that every key the layout requires for
    /// <paramref name="capture"/> is there and values are finite where they must be.
    /// </summary>
    private StepRecord Decode(JsonElement root, int step, RecordPhase phase, CaptureRequest capture, string answer, int rows)
    {
        if (!root.TryGetProperty("entries", out var entries) || entries.ValueKind != JsonValueKind.Array)
            throw _worker.Fatal($"its {answer} answer has no \"entries\" array");
        var belongs = _layout.Required(phase, CaptureRequest.Everything).ToHashSet();
        var record = new StepRecord(step, phase);
        foreach (var e in entries.EnumerateArray())
        {
            string? kindName = e.TryGetProperty("kind", out var k) && k.ValueKind == JsonValueKind.String ? k.GetString() : null;
            if (TensorKinds.TryParse(kindName) is not TensorKind kind)
                throw _worker.Fatal($"an entry of its {answer} answer has an unknown kind {(kindName is null ? "(none)" : $"'{kindName}'")}");
            string site = e.TryGetProperty("site", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString()! : "";
            var key = new TensorKey(kind, site);
            if (record.Find(kind, site) is not null) throw _worker.Fatal($"its {answer} answer holds {key} twice");
            if (_layout.ShapeOf(key, rows) is not int[] shape)
                throw _worker.Fatal($"its {answer} answer holds {key}, which this model does not have (sites are call ids, parameter names instance.local, batchnorm instance names, or parameter/slot for optimizer slots)");
            if (!belongs.Contains(key)) throw _worker.Fatal($"its {answer} answer holds {key}, which belongs in another answer (docs/worker-protocol.md, section 5)");
            Tensor value;
            try
            {
                value = TensorCodec.Read(e.TryGetProperty("tensor", out var t) ? t : default, $"{key} in its {answer} answer", shape, _exchange);
            }
            catch (MalformedTensorException ex)
            {
                throw _worker.Fatal("malformed tensor: " + ex.Message);
            }
            // Reading tensor files counts against the request's time limit like waiting for the line did.
            _worker.CheckDeadline(answer);
            record.Add(kind, site, value);
        }
        var missing = _layout.Required(phase, capture).Where(key => record.Find(key.Kind, key.Site) is null).Select(key => key.ToString()).ToList();
        if (missing.Count > 0)
            throw _worker.Fatal($"its {answer} answer lacks {string.Join(", ", missing.Take(8))}{(missing.Count > 8 ? $" and {missing.Count - 8} more" : "")}");
        CheckNonFinite(record, answer);
        // Canonical production order whatever order the worker used.
        return _layout.Canonical(record);
    }

    /// <summary>
    /// Non-finite values are data only where they can be (docs/worker-protocol.md, "Non-finite values"):
    /// anywhere in a record whose loss is non-finite, and in what is computed after the loss (gradients,
    /// running statistics, optimizer slots, parameters). Forward outputs, batch statistics and accuracies with a finite
    /// loss cannot be NaN/Inf unless the worker is broken, so they are refused; the optimizer's update count is a whole
    /// number >= 0 in every answer.
    /// </summary>
    private void CheckNonFinite(StepRecord record, string answer)
    {
        if (record.Find(TensorKind.OptimizerStep) is { } count && !(double.IsFinite(count.Data[0]) && count.Data[0] >= 0 && count.Data[0] == Math.Floor(count.Data[0])))
            throw _worker.Fatal($"its {answer} answer has optimizerStep {count.Data[0]}; expected the number of updates done, a whole number >= 0");
        var loss = record.Find(TensorKind.Loss) ?? record.Find(TensorKind.EvalLoss);
        if (loss is not null && !double.IsFinite(loss.Data[0])) return;
        foreach (var e in record.Entries)
        {
            bool mustBeFinite = e.Key.Kind is TensorKind.Forward or TensorKind.BatchMean or TensorKind.BatchVariance
                or TensorKind.TrainAccuracy or TensorKind.EvalOutput or TensorKind.EvalAccuracy;
            if (!mustBeFinite) continue;
            int bad = FirstNonFinite(e.Value.Data);
            if (bad >= 0)
                throw _worker.Fatal($"its {answer} answer has {e.Value.Data[bad]} at element {bad} of {e.Key} while the loss is finite (a forward value that fed a finite loss cannot be non-finite)");
        }
    }

    private static int FirstNonFinite(double[] values)
    {
        for (int i = 0; i < values.Length; i++)
            if (!double.IsFinite(values[i])) return i;
        return -1;
    }
}

/// <summary>
/// One step's timing: the round trip seen by the harness (request encoding to decoded record), the
/// worker's own compute time, and the parts of the round trip spent writing the request and waiting for
/// (and parsing) the answer line; the rest is decoding and checking tensors.
/// </summary>
internal readonly record struct StepTiming(int Step, double RoundTripMs, double ComputeMs, double WriteMs, double WaitMs);
