using System.Diagnostics;
using System.Text.Json;
using Parity.Data;
using Parity.Models;
using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Backends.Workers.Protocol;

/// <summary>
/// A plan running in a worker: <c>build</c> (and <c>load_state</c> under injected init) when opened,
/// then <c>read_state</c>, <c>step</c> and <c>evaluate</c>. Every answer is checked against the plan's
/// graph (every asked-for key present once, shapes right, values finite where they must be) before it
/// becomes a <see cref="StepRecord"/>, so a worker in any language gets the same scrutiny.
/// </summary>
internal sealed class WorkerSession : IBackendSession
{
    private readonly WorkerProcess _worker;
    private readonly Plan _plan;
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
        _dtype = dtype;
        _timeout = timeout;
        _fileThreshold = fileThreshold;
    }

    public IReadOnlyList<ConventionMismatch> Mismatches { get; private set; } = [];

    public IReadOnlyDictionary<string, string> RuntimeInfo { get; private set; } = new Dictionary<string, string>();

    /// <summary>Per step: the harness's round trip and the worker's own <c>computeMs</c> (NaN when not reported).</summary>
    public IReadOnlyList<StepTiming> Timings => _timings;

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
        var record = Decode(doc.RootElement, new StepRecord(step, RecordPhase.Initial), "read_state", batch: 0);
        RequireKeys(record, [TensorKind.Parameter, TensorKind.RunningMean, TensorKind.RunningVariance], 0, "read_state");
        foreach (var e in record.Entries)
            if (e.Value.Data.Any(v => !double.IsFinite(v)))
                throw _worker.Fatal($"its read_state answer has a non-finite value in {e.Key}: initial state must be finite");
        return record;
    }

    public StepRecord Step(int step, Batch batch, CaptureRequest capture)
    {
        var clock = Stopwatch.StartNew();
        using var doc = Exchange("step", w => WriteBatch(w, step, batch, capture));
        var record = Decode(doc.RootElement, new StepRecord(step, RecordPhase.Train), $"step {step}", batch.Size);
        var wanted = capture.Kinds.Where(k => !k.IsEval()).Append(TensorKind.Loss).Append(TensorKind.TrainAccuracy).ToHashSet();
        RequireKeys(record, wanted, batch.Size, $"step {step}");
        CheckFinite(record, TensorKind.Loss, $"step {step}");
        clock.Stop();
        double computeMs = doc.RootElement.TryGetProperty("computeMs", out var c) && c.ValueKind == JsonValueKind.Number ? c.GetDouble() : double.NaN;
        _timings.Add(new StepTiming(step, clock.Elapsed.TotalMilliseconds, computeMs, _worker.LastExchange.WriteMs, _worker.LastExchange.WaitMs));
        return record;
    }

    public StepRecord Evaluate(int step, Batch data, CaptureRequest capture)
    {
        using var doc = Exchange("evaluate", w => WriteBatch(w, step, data, capture));
        var record = Decode(doc.RootElement, new StepRecord(step, RecordPhase.Eval), $"evaluate after step {step}", data.Size);
        var wanted = capture.Kinds.Where(k => k.IsEval()).Append(TensorKind.EvalLoss).Append(TensorKind.EvalAccuracy).ToHashSet();
        RequireKeys(record, wanted, data.Size, $"evaluate after step {step}");
        CheckFinite(record, TensorKind.EvalLoss, $"evaluate after step {step}");
        return record;
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
                mismatches.Add(new ConventionMismatch(Field("setting"), Field("spec"), Field("backend"), affects));
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
        w.WriteStartArray("capture");
        foreach (var k in capture.Kinds.OrderBy(k => k)) w.WriteStringValue(k.Name());
        w.WriteEndArray();
    }

    private string FileDirectory() => _exchange.Create();

    /// <summary>Reads <c>entries</c> into <paramref name="record"/>, canonical order, every key checked against the graph.</summary>
    private StepRecord Decode(JsonElement root, StepRecord record, string answer, int batch)
    {
        if (!root.TryGetProperty("entries", out var entries) || entries.ValueKind != JsonValueKind.Array)
            throw _worker.Fatal($"its {answer} answer has no \"entries\" array");
        var decoded = new List<(TensorKey Key, Tensor Value)>();
        var seen = new HashSet<TensorKey>();
        foreach (var e in entries.EnumerateArray())
        {
            string? kindName = e.TryGetProperty("kind", out var k) && k.ValueKind == JsonValueKind.String ? k.GetString() : null;
            if (TensorKinds.TryParse(kindName) is not TensorKind kind)
                throw _worker.Fatal($"an entry of its {answer} answer has an unknown kind {(kindName is null ? "(none)" : $"'{kindName}'")}");
            string site = e.TryGetProperty("site", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString()! : "";
            var key = new TensorKey(kind, site);
            if (!seen.Add(key)) throw _worker.Fatal($"its {answer} answer holds {key} twice");
            if (ExpectedShape(key, batch) is not int[] shape)
                throw _worker.Fatal($"its {answer} answer holds {key}, which this model does not have (sites are call ids, parameter names instance.local, or batchnorm instance names)");
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
            decoded.Add((key, value));
        }
        // Canonical production order (TensorKind order, then graph order) whatever order the worker used.
        foreach (var (key, value) in decoded.OrderBy(d => d.Key.Kind).ThenBy(d => SiteOrder(d.Key)))
            record.Add(key.Kind, key.Site, value);
        CheckNonFinite(record, answer);
        return record;
    }

    private void RequireKeys(StepRecord record, IEnumerable<TensorKind> kinds, int batch, string answer)
    {
        var missing = kinds.SelectMany(ExpectedSites).Where(key => record.Find(key.Kind, key.Site) is null).Select(k => k.ToString()).ToList();
        if (missing.Count > 0)
            throw _worker.Fatal($"its {answer} answer lacks {string.Join(", ", missing.Take(8))}{(missing.Count > 8 ? $" and {missing.Count - 8} more" : "")}");
    }

    /// <summary>
    /// Non-finite values are data only where they can be (docs/worker-protocol.md, "Non-finite values"):
    /// anywhere in a record whose loss is non-finite, and in what is computed after the loss (gradients,
    /// running statistics, parameters). Forward outputs, batch statistics and accuracies with a finite loss
    /// cannot be NaN/Inf unless the worker is broken, so they are refused.
    /// </summary>
    private void CheckNonFinite(StepRecord record, string answer)
    {
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

    private void CheckFinite(StepRecord record, TensorKind scalar, string answer)
    {
        var t = record.Find(scalar)!;
        if (t.Shape.Length != 0) throw _worker.Fatal($"its {answer} answer has {scalar.Name()} of shape {t.ShapeText}; expected a scalar []");
    }

    private IEnumerable<TensorKey> ExpectedSites(TensorKind kind)
    {
        var g = _plan.Graph;
        return kind switch
        {
            TensorKind.Forward or TensorKind.OutputGradient or TensorKind.EvalOutput => g.Calls.Select(c => new TensorKey(kind, c.Id)),
            TensorKind.BatchMean or TensorKind.BatchVariance => g.Calls.Where(c => c.IsBatchNorm).Select(c => new TensorKey(kind, c.Id)),
            TensorKind.ParameterGradient or TensorKind.Parameter => g.Parameters.Select(p => new TensorKey(kind, p.Name)),
            TensorKind.RunningMean or TensorKind.RunningVariance => g.BatchNorms.Select(b => new TensorKey(kind, b.Name)),
            _ => [new TensorKey(kind, "")],
        };
    }

    private int[]? ExpectedShape(TensorKey key, int batch)
    {
        var g = _plan.Graph;
        CallSite? Call() => g.Calls.FirstOrDefault(c => c.Id == key.Site);
        switch (key.Kind)
        {
            case TensorKind.Forward or TensorKind.OutputGradient or TensorKind.EvalOutput:
                return Call() is { } c ? [batch, c.OutWidth] : null;
            case TensorKind.BatchMean or TensorKind.BatchVariance:
                return Call() is { Layer: BatchNormSpec bn } ? [bn.Features] : null;
            case TensorKind.ParameterGradient or TensorKind.Parameter:
                return g.Parameters.FirstOrDefault(p => p.Name == key.Site)?.Shape;
            case TensorKind.RunningMean or TensorKind.RunningVariance:
                return g.BatchNorms.FirstOrDefault(b => b.Name == key.Site) is { } b2 ? [b2.Features] : null;
            default:
                return key.Site.Length == 0 ? [] : null;
        }
    }

    private int SiteOrder(TensorKey key)
    {
        var g = _plan.Graph;
        for (int i = 0; i < g.Calls.Count; i++) if (g.Calls[i].Id == key.Site) return i;
        for (int i = 0; i < g.Parameters.Count; i++) if (g.Parameters[i].Name == key.Site) return i;
        for (int i = 0; i < g.BatchNorms.Count; i++) if (g.BatchNorms[i].Name == key.Site) return i;
        return 0;
    }
}

/// <summary>
/// One step's timing: the round trip seen by the harness (request encoding to decoded record), the
/// worker's own compute time, and the parts of the round trip spent writing the request and waiting for
/// (and parsing) the answer line; the rest is decoding and checking tensors.
/// </summary>
internal readonly record struct StepTiming(int Step, double RoundTripMs, double ComputeMs, double WriteMs, double WaitMs);
