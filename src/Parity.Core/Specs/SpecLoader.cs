using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Parity.IO;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Specs;

/// <summary>
/// Reads and validates a scenario spec (docs/spec.md, docs/spec.schema.json). Every user mistake becomes
/// a <see cref="SpecException"/> naming the JSON path and what was expected; nothing runs before the
/// whole spec, shapes included, is consistent.
/// </summary>
public static class SpecLoader
{
    // Limits keep a mistyped number from allocating gigabytes before anything can say it is wrong.
    private const int MaxWidth = 1 << 16;
    private const long MaxWeightElements = 64L << 20;
    internal const long MaxDataElements = 256L << 20;
    private const long MaxTeacherWork = 16L << 30;

    /// <summary>The largest spec file read: far beyond any real spec (a model at every limit is a few megabytes).</summary>
    public const int MaxFileBytes = 64 << 20;

    /// <summary>
    /// Loads a spec file; relative data paths resolve against its directory. The file is UTF-8 (a byte-order mark,
    /// also of UTF-16 or UTF-32, is honoured); bytes that do not decode are an error naming their offset.
    /// </summary>
    public static ScenarioSpec LoadFile(string path)
    {
        string text;
        try
        {
            text = Decode(ReadBounded(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new SpecException("$", $"cannot read the spec file: {e.Message}", path);
        }
        catch (SpecException e)
        {
            throw e.WithFile(path);
        }
        try
        {
            return Parse(text, Path.GetDirectoryName(Path.GetFullPath(path)) ?? ".") with { SourceFile = path };
        }
        catch (SpecException e)
        {
            throw e.WithFile(path);
        }
    }

    // The spec file is the user's own choice (a pipe such as bash's <(...) is fine); only its size is bounded.
    private static byte[] ReadBounded(string path)
    {
        using var stream = File.OpenRead(path);
        var buffer = new MemoryStream();
        var chunk = new byte[1 << 16];
        int n;
        while ((n = stream.Read(chunk)) > 0)
        {
            if (buffer.Length + n > MaxFileBytes) throw new SpecException("$", $"the spec file is larger than {MaxFileBytes >> 20} MiB");
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    private static string Decode(byte[] bytes)
    {
        // Byte-order marks, longest first (the UTF-32 LE mark starts like the UTF-16 LE one).
        (byte[] Mark, Encoding Encoding)[] marks =
        [
            ([0xFF, 0xFE, 0x00, 0x00], new UTF32Encoding(false, false, true)),
            ([0x00, 0x00, 0xFE, 0xFF], new UTF32Encoding(true, false, true)),
            ([0xEF, 0xBB, 0xBF], new UTF8Encoding(false, true)),
            ([0xFF, 0xFE], new UnicodeEncoding(false, false, true)),
            ([0xFE, 0xFF], new UnicodeEncoding(true, false, true)),
        ];
        var (mark, encoding) = marks.FirstOrDefault(m => bytes.AsSpan().StartsWith(m.Mark), ([], new UTF8Encoding(false, true)));
        try
        {
            return encoding.GetString(bytes, mark.Length, bytes.Length - mark.Length);
        }
        catch (DecoderFallbackException e)
        {
            string name = encoding is UTF8Encoding ? "UTF-8" : encoding.WebName.ToUpperInvariant();
            throw new SpecException("$", $"the file is not valid {name}: invalid bytes at byte offset {mark.Length + Math.Max(0, e.Index)}");
        }
    }

    /// <summary>Parses spec text.</summary>
    public static ScenarioSpec Parse(string json, string baseDirectory = ".")
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true, MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new SpecException("$", $"not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}): {FirstSentence(e.Message)}");
        }
        using (doc)
        {
            var root = new JsonCursor(doc.RootElement, "$", new SpecErrors());
            root.RequireDecodableStrings();
            var spec = Read(root) with { BaseDirectory = baseDirectory };
            return spec with { CanonicalJson = SpecWriter.Write(spec) };
        }
    }

    /// <summary>
    /// A short stable hash of what the spec computes (sha256 of the canonical JSON, first 16 hex digits): the
    /// description is left out, like <c>comment</c> keys and formatting, so rewording it keeps every baseline valid.
    /// </summary>
    public static string Hash(ScenarioSpec spec) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(SpecWriter.Write(spec with { Description = "" }))))[..16];

    // Each section, layer and data source is read on its own, so one load reports every mistake: a part that fails
    // records its error and the parts that do not depend on it are still checked. Checks across sections run only when
    // the sections they compare were read without error, so a mistake is not reported again as its consequences.
    private static ScenarioSpec Read(JsonCursor root)
    {
        var errors = root.Errors!;
        root.Object("name", "description", "seed", "dtype", "model", "init", "loss", "optimizer", "data", "training", "evaluation", "capture", "tolerances");
        string name = errors.Read(() => ReadName(root), "");
        ulong seed = errors.Read(() => root.Seed("seed", 0), 0UL);
        var dtype = errors.Read(() => DTypes.TryParse(root.Choice("dtype", "float32", "float32", "float64"))!.Value, DType.Float32);
        var loss = errors.Read<LossSpec?>(() => ReadLoss(root.Optional("loss")), null);

        var model = errors.Read<ModelSpec?>(() => ReadModel(root.Get("model")), null);
        var init = errors.Read<InitSpec?>(() => ReadInit(root.Optional("init"), seed), null);
        var optimizer = errors.Read<OptimizerSpec?>(() => ReadOptimizer(root.Get("optimizer")), null);
        var weightDecay = errors.Read<WeightDecaySpec?>(() => root.Has("optimizer") && root.Get("optimizer").Element.ValueKind == JsonValueKind.Object
            ? ReadWeightDecay(root.Get("optimizer").Optional("weightDecay")) : null, null);
        var data = errors.Read<DataSpec?>(() => ReadData(root.Get("data"), seed), null);
        // A batch of one has no batch variance: PyTorch refuses to train batchnorm on it, libtorch gives NaN for the
        // unbiased running variance, and TF.js trains on; no comparison of that means anything, so it is refused here.
        if (data is not null && data.BatchSize < 2 && model?.Layers.OfType<BatchNormSpec>().FirstOrDefault() is { } bn)
            errors.Add(root.Get("data").Get("batchSize").Error($"expected at least 2 in a model with batchnorm layer '{bn.Name}': a batch of one sample has no batch variance to normalize with"));
        var schedule = errors.Read<ScheduleSpec?>(() => ReadSchedule(root.Get("training"), root.Optional("evaluation")), null);
        var capture = errors.Read<CaptureSpec?>(() => ReadCapture(root.Optional("capture")), null);
        var tolerances = errors.Read<ToleranceOverrides?>(() => root.Optional("tolerances") is { } t ? ReadTolerances(t) : null, null);
        if (loss is not null && data is not null)
        {
            if (loss.Targets == TargetSource.Data && data.Train is not SyntheticSourceSpec { HasTargets: true })
                errors.Add(root.Get("loss").Get("targets").Error("\"data\" needs a training source with float targets (the synthetic 'regression' generator); use \"labels\" or \"inputs\""));
            else if (loss.Targets == TargetSource.Data && data.Eval is not null and not SyntheticSourceSpec { HasTargets: true })
                errors.Add(root.Get("data").Get("eval").Error("the loss's targets are \"data\": the eval source needs float targets too (the synthetic 'regression' generator)"));
        }
        string description = errors.Read(() => root.String("description", ""), "");
        errors.ThrowIfAny();
        return new ScenarioSpec(name, description, seed, dtype, model!, init!, optimizer! with { WeightDecay = weightDecay }, data!, schedule!, capture!, tolerances) { Loss = loss! };
    }

    private static string ReadName(JsonCursor root)
    {
        string name = root.String("name");
        if (PathNames.ScenarioNameProblem(name) is { } problem) throw root.Get("name").Error(problem);
        return name;
    }

    /// <summary>
    /// <c>loss</c>: a type name, or an object of <c>type</c>, <c>labelSmoothing</c> (softmax cross-entropy only) and
    /// <c>targets</c>; softmax cross-entropy on the labels when absent.
    /// </summary>
    private static LossSpec ReadLoss(JsonCursor? l)
    {
        string[] types = ["softmax_cross_entropy", "mse", "bce_with_logits"];
        if (l is not { } loss) return LossSpec.Default;
        var function = (string type) => type switch
        {
            "mse" => LossFunction.MeanSquaredError,
            "bce_with_logits" => LossFunction.BinaryCrossEntropyWithLogits,
            _ => LossFunction.SoftmaxCrossEntropy,
        };
        if (loss.Element.ValueKind == JsonValueKind.String)
        {
            string name = loss.String();
            if (!types.Contains(name)) throw loss.Error(SpecVocabulary.UnknownValue(loss.Path, name, types));
            return new LossSpec(function(name));
        }
        string t = loss.TypedObject().Choice("type", null, types);
        loss.Object("type", "labelSmoothing", "targets");
        double smoothing = loss.Number("labelSmoothing", 0, 0.9999999, 0);
        if (smoothing > 0 && t != "softmax_cross_entropy")
            throw loss.Get("labelSmoothing").Error("label smoothing is defined here for softmax_cross_entropy only (frameworks smooth binary targets by another formula)");
        var targets = loss.Choice("targets", "labels", "labels", "inputs", "data") switch
        {
            "inputs" => TargetSource.Inputs,
            "data" => TargetSource.Data,
            _ => TargetSource.Labels,
        };
        if (targets != TargetSource.Labels && t == "softmax_cross_entropy")
            throw loss.Get("targets").Error("softmax_cross_entropy compares with class labels: targets must be \"labels\" (use mse or bce_with_logits for float targets)");
        return new LossSpec(function(t), smoothing, targets);
    }

    // Layers are read one by one and calls checked one by one, each mistake recorded: a call of a layer that could not
    // be read is not reported again, and the width after it is unknown until the next linear call sets it.
    private static ModelSpec ReadModel(JsonCursor m)
    {
        var errors = m.Errors!;
        m.Object("inputs", "layers", "calls");
        int? inputs = errors.Read<int?>(() => m.Int("inputs", 1, MaxWidth), null);
        var layers = new List<LayerSpec>();
        var names = new HashSet<string>();
        var unreadable = new HashSet<string>();
        bool unnamed = false;
        var layerItems = errors.Read<IEnumerable<JsonCursor>?>(() => m.Get("layers").Array(1, 1000), null);
        foreach (var l in layerItems ?? [])
        {
            if (errors.Read<LayerSpec?>(() => ReadLayer(l), null) is not { } layer)
            {
                // The calls of a layer that could not be read are not checked: its error is already listed.
                if (errors.Read<string?>(() => l.Has("name") ? l.String("name") : null, null) is { } broken) unreadable.Add(broken);
                else unnamed = true;
                continue;
            }
            if (!names.Add(layer.Name)) errors.Add(l.Get("name").Error($"duplicate layer name '{layer.Name}'"));
            else layers.Add(layer);
        }

        long parameters = layers.Sum(l => l.ParameterShapes.Sum(s => s.Shape.Aggregate(1L, (a, b) => a * b)));
        if (parameters > MaxWeightElements)
            errors.Add(m.Get("layers").Error($"the layers hold {parameters} parameters in all, more than the limit of {MaxWeightElements}"));

        var calls = new List<(string Layer, string? Id, JsonCursor At)>();
        var callItems = errors.Read<IEnumerable<JsonCursor>?>(() => m.Get("calls").Array(1, 10000), null);
        bool everyCallRead = callItems is not null;
        foreach (var c in callItems ?? [])
        {
            everyCallRead &= errors.Check(() =>
            {
                if (c.Element.ValueKind == JsonValueKind.String) calls.Add((c.String(), null, c));
                else
                {
                    c.Object("layer", "id");
                    calls.Add((c.String("layer"), c.Has("id") ? c.String("id") : null, c));
                }
            });
        }

        // Resolve call ids: explicit, else the layer name, else layer#k for the k-th call of a shared instance.
        var callSpecs = new List<CallSpec>();
        var ids = new HashSet<string>();
        int? width = inputs;
        foreach (var (layerName, explicitId, at) in calls)
        {
            var layer = layers.FirstOrDefault(l => l.Name == layerName);
            if (layer is null)
            {
                if (!unreadable.Contains(layerName) && !unnamed && layerItems is not null)
                    errors.Add(at.Error($"no layer named '{layerName}'; layers are: {string.Join(", ", names)}"));
                width = null;
                continue;
            }
            int callsOfLayer = calls.Count(c => c.Layer == layerName);
            int k = callSpecs.Count(c => c.Layer == layerName) + 1;
            string id = explicitId ?? (callsOfLayer == 1 ? layerName : $"{layerName}#{k}");
            if (id.Length == 0 || !ids.Add(id)) errors.Add(at.Error($"call id '{id}' is empty or used twice"));
            switch (layer)
            {
                case LinearSpec lin:
                    if (width is int w && lin.In != w) errors.Add(at.Error($"layer '{lin.Name}' expects {lin.In} inputs but the previous call produces {w}"));
                    width = lin.Out;
                    break;
                case BatchNormSpec bn when width is int bw && bn.Features != bw:
                    errors.Add(at.Error($"batchnorm '{bn.Name}' has {bn.Features} features but its input has {bw}"));
                    break;
                case LayerNormSpec ln when width is int lw && ln.Features != lw:
                    errors.Add(at.Error($"layernorm '{ln.Name}' has {ln.Features} features but its input has {lw}"));
                    break;
            }
            callSpecs.Add(new CallSpec(id, layerName));
        }
        if (everyCallRead)
        {
            foreach (var unused in layers.Where(l => calls.All(c => c.Layer != l.Name)))
                errors.Add(m.Get("calls").Error($"layer '{unused.Name}' is never called"));
        }
        return new ModelSpec(inputs ?? 1, layers, callSpecs);
    }

    private static LayerSpec ReadLayer(JsonCursor l)
    {
        string type = l.TypedObject().Choice("type", null, "linear", "batchnorm", "layernorm", "relu", "identity",
            "tanh", "sigmoid", "leaky_relu", "gelu", "silu", "elu", "dropout");
        string name = l.String("name");
        if (name.Length is 0 or > 100 || name.Any(c => char.IsControl(c) || c is '.' or '#' or '/' or ':'))
            throw l.Get("name").Error("expected 1..100 characters without '.', '#', '/', ':' or control characters");
        string[] allowed = type switch
        {
            "linear" => ["name", "type", "in", "out", "bias", "init"],
            "batchnorm" => ["name", "type", "features", "momentum", "eps", "runningVariance", "affine"],
            "layernorm" => ["name", "type", "features", "eps", "affine"],
            "leaky_relu" => ["name", "type", "slope"],
            "gelu" => ["name", "type", "approximation"],
            "elu" => ["name", "type", "alpha"],
            "dropout" => ["name", "type", "p", "masks"],
            _ => ["name", "type"],
        };
        l.Object(allowed);
        switch (type)
        {
            case "linear":
                int inW = l.Int("in", 1, MaxWidth), outW = l.Int("out", 1, MaxWidth);
                if ((long)inW * outW > MaxWeightElements) throw l.Error($"{inW}x{outW} weights exceed the limit of {MaxWeightElements} elements");
                var init = l.Optional("init")?.Object("weight", "bias");
                return new LinearSpec(name, inW, outW, l.Bool("bias", true),
                    ReadInitializer(init, "weight", "pytorch_default"), ReadInitializer(init, "bias", "pytorch_default"));
            case "batchnorm":
                return new BatchNormSpec(name, l.Int("features", 1, MaxWidth), l.Number("momentum", 0, 1, 0.1), l.Number("eps", 0, 1, 1e-5, exclusiveMin: true),
                    l.Choice("runningVariance", "unbiased", "unbiased", "biased") == "unbiased" ? RunningVarianceEstimator.Unbiased : RunningVarianceEstimator.Biased,
                    l.Bool("affine", true));
            case "layernorm":
                return new LayerNormSpec(name, l.Int("features", 1, MaxWidth), l.Number("eps", 0, 1, 1e-5, exclusiveMin: true), l.Bool("affine", true));
            case "relu":
                return new ReluSpec(name);
            case "tanh":
                return new TanhSpec(name);
            case "sigmoid":
                return new SigmoidSpec(name);
            case "leaky_relu":
                // No default: PyTorch, the Keras layer and tf.nn each default to another slope.
                if (!l.Has("slope")) throw l.Error("give the negative 'slope' explicitly (PyTorch's default is 0.01, the Keras layer's 0.3, tf.nn.leaky_relu's 0.2)");
                return new LeakyReluSpec(name, l.Number("slope", 0, 1));
            case "gelu":
                return new GeluSpec(name, l.Choice("approximation", "exact", "exact", "tanh") == "exact" ? GeluApproximation.Exact : GeluApproximation.Tanh);
            case "silu":
                return new SiluSpec(name);
            case "elu":
                return new EluSpec(name, l.Number("alpha", 0, 100, 1.0, exclusiveMin: true));
            case "dropout":
                return ReadDropout(l, name);
            default:
                return new IdentitySpec(name);
        }
    }

    private static DropoutSpec ReadDropout(JsonCursor l, string name)
    {
        // No default: PyTorch's p and Keras's rate are drop probabilities, TF1's keep_prob the keep probability.
        if (!l.Has("p")) throw l.Error("give the DROP probability 'p' explicitly (PyTorch's p and Keras's rate; TF1's keep_prob is 1 - p)");
        double p = l.Number("p", 0, 1);
        if (p >= 1) throw l.Get("p").Error("expected a drop probability below 1 (p = 1 drops everything and scales by 1/0)");
        var masks = l.Choice("masks", "harness", "harness", "framework") == "harness" ? DropoutMasks.Harness : DropoutMasks.Framework;
        return new DropoutSpec(name, p, masks);
    }

    private static InitializerSpec ReadInitializer(JsonCursor? parent, string key, string fallback)
    {
        if (parent is not { } p || !p.Has(key)) return new InitializerSpec(fallback);
        var v = p.Get(key);
        if (v.Element.ValueKind == JsonValueKind.String)
        {
            string kind = v.String();
            if (kind == "normal") throw v.Error("'normal' needs a standard deviation: write {\"type\": \"normal\", \"std\": 0.01}");
            if (!InitializerSpec.Kinds.Contains(kind)) throw v.Error($"unknown initializer '{kind}'; expected one of: {string.Join(", ", InitializerSpec.Kinds)}");
            return new InitializerSpec(kind);
        }
        v.Object("type", "std");
        string type = v.Choice("type", null, [.. InitializerSpec.Kinds]);
        return new InitializerSpec(type, type == "normal" ? v.Number("std", 0, 100) : 0);
    }

    private static InitSpec ReadInit(JsonCursor? c, ulong seed)
    {
        if (c is not { } i) return new InitSpec(InitMode.Injected, seed);
        i.Object("mode", "seed", "from");
        var mode = i.Choice("mode", "injected", "injected", "framework") == "injected" ? InitMode.Injected : InitMode.Framework;
        string? from = i.Has("from") ? NonEmpty(i, "from") : null;
        if (from is not null && mode != InitMode.Injected) throw i.Get("from").Error("'from' gives the injected initial state: it needs mode \"injected\"");
        return new InitSpec(mode, i.Seed("seed", seed), from);
    }

    private static OptimizerSpec ReadOptimizer(JsonCursor o)
    {
        string type = o.TypedObject().Choice("type", null, "sgd", "adam", "rmsprop", "adagrad");
        if (type == "rmsprop") return WithScheduleAndClipping(o, ReadRmsprop(o));
        if (type == "adagrad") return WithScheduleAndClipping(o, ReadAdagrad(o));
        if (type == "sgd")
        {
            o.Object("type", "lr", "momentum", "nesterov", "momentumForm", "schedule", "clip", "weightDecay");
            return WithScheduleAndClipping(o, ReadSgdMomentum(o, new SgdSpec(o.Number("lr", 0, 100, exclusiveMin: true), o.Number("momentum", 0, 0.9999999, 0))));
        }
        o.Object("type", "lr", "beta1", "beta2", "eps", "epsilonForm", "betaPrecision", "schedule", "clip", "weightDecay");
        var form = o.Choice("epsilonForm", "sqrtVHat", "sqrtVHat", "epsilonHat") == "sqrtVHat" ? EpsilonForm.SqrtVHat : EpsilonForm.EpsilonHat;
        var precision = o.Choice("betaPrecision", "float64", "float64", "float32") == "float64" ? BetaPrecision.Float64 : BetaPrecision.Float32;
        return WithScheduleAndClipping(o, new AdamSpec(o.Number("lr", 0, 100, 1e-3, exclusiveMin: true), o.Number("beta1", 0, 0.9999999, 0.9), o.Number("beta2", 0, 0.9999999, 0.999),
            o.Number("eps", 0, 1, 1e-8, exclusiveMin: true), form, precision));
    }

    private static SgdSpec ReadSgdMomentum(JsonCursor o, SgdSpec sgd)
    {
        bool nesterov = o.Bool("nesterov", false);
        // PyTorch refuses Nesterov without momentum; there is nothing to look ahead with.
        if (nesterov && sgd.Momentum == 0) throw o.Get("nesterov").Error("Nesterov momentum needs a momentum above 0");
        var form = o.Choice("momentumForm", "pytorch", "pytorch", "keras") == "pytorch" ? MomentumForm.PyTorch : MomentumForm.Keras;
        return sgd with { Nesterov = nesterov, MomentumForm = form };
    }

    /// <summary>The settings every optimizer type takes: <c>schedule</c> and <c>clip</c> (docs/spec.md "Learning-rate schedules", "Gradient clipping").</summary>
    private static T WithScheduleAndClipping<T>(JsonCursor o, T optimizer) where T : OptimizerSpec =>
        optimizer with
        {
            Schedule = o.Optional("schedule") is { } s ? ReadLearningRateSchedule(s, optimizer.LearningRate) : ConstantSchedule.Instance,
            Clipping = o.Optional("clip") is { } c ? ReadClipping(c) : null,
        };

    private static LearningRateSchedule ReadLearningRateSchedule(JsonCursor s, double lr)
    {
        string type = s.TypedObject().Choice("type", null, "constant", "step", "exponential", "cosine");
        switch (type)
        {
            case "step":
                s.Object("type", "stepSize", "gamma");
                return new StepSchedule(s.Int("stepSize", 1, int.MaxValue), s.Number("gamma", 0, 1, exclusiveMin: true));
            case "exponential":
                s.Object("type", "decaySteps", "rate", "staircase");
                return new ExponentialSchedule(s.Int("decaySteps", 1, int.MaxValue), s.Number("rate", 0, 1, exclusiveMin: true), s.Bool("staircase", false));
            case "cosine":
                s.Object("type", "decaySteps", "minLr");
                return new CosineSchedule(s.Int("decaySteps", 1, int.MaxValue), s.Number("minLr", 0, lr, 0));
            default:
                s.Object("type");
                return ConstantSchedule.Instance;
        }
    }

    private static GradientClipping ReadClipping(JsonCursor c)
    {
        string type = c.TypedObject().Choice("type", null, "globalNorm", "norm", "value");
        if (type == "value")
        {
            c.Object("type", "value");
            return new GradientClipping(ClipScope.Value, c.Number("value", 0, 1e30, exclusiveMin: true), 0);
        }
        c.Object("type", "maxNorm", "eps");
        return new GradientClipping(type == "globalNorm" ? ClipScope.GlobalNorm : ClipScope.PerTensorNorm,
            c.Number("maxNorm", 0, 1e30, exclusiveMin: true), c.Number("eps", 0, 1, 0));
    }

    private static RmspropSpec ReadRmsprop(JsonCursor o)
    {
        o.Object("type", "lr", "rho", "eps", "epsilonPlacement", "meanSquareInit", "momentum", "centered", "weightDecay", "schedule", "clip");
        return new RmspropSpec(o.Number("lr", 0, 100, 1e-2, exclusiveMin: true), o.Number("rho", 0, 0.9999999, 0.99), o.Number("eps", 0, 1, 1e-8),
            ReadEpsilonPlacement(o), o.Number("meanSquareInit", 0, 1e6, 0), o.Number("momentum", 0, 0.9999999, 0), o.Bool("centered", false));
    }

    private static AdagradSpec ReadAdagrad(JsonCursor o)
    {
        o.Object("type", "lr", "initialAccumulator", "eps", "epsilonPlacement", "weightDecay", "schedule", "clip");
        var spec = new AdagradSpec(o.Number("lr", 0, 100, 1e-2, exclusiveMin: true), o.Number("initialAccumulator", 0, 1e6, 0), o.Number("eps", 0, 1, 1e-10),
            ReadEpsilonPlacement(o));
        // With nothing added and nothing accumulated, the first update would divide 0 by 0.
        if (spec.Eps == 0 && spec.InitialAccumulator == 0)
            throw o.Get("eps").Error("eps 0 needs initialAccumulator > 0: the first update would divide by sqrt(0)");
        return spec;
    }

    private static EpsilonPlacement ReadEpsilonPlacement(JsonCursor o) =>
        o.Choice("epsilonPlacement", "outside", "outside", "inside") == "outside" ? EpsilonPlacement.Outside : EpsilonPlacement.Inside;

    /// <summary>
    /// The optimizer's <c>weightDecay</c>: the form names its number (<c>rate</c> for a gradient term or a shrink,
    /// <c>coefficient</c> for a loss term, whose gradient is twice it), and every convention is written out.
    /// </summary>
    private static WeightDecaySpec? ReadWeightDecay(JsonCursor? c)
    {
        if (c is not { } d) return null;
        string formName = d.TypedObject().Choice("form", null, "coupled", "decoupled", "l2Loss");
        var parameters = d.Choice("parameters", null, "all", "weights") == "all" ? DecayedParameters.All : DecayedParameters.Weights;
        switch (formName)
        {
            case "coupled":
                d.Object("form", "rate", "parameters");
                return new WeightDecaySpec(d.Number("rate", 0, 1, exclusiveMin: true), WeightDecayForm.Coupled, parameters);
            case "decoupled":
                d.Object("form", "rate", "parameters", "multiplyByLearningRate");
                if (!d.Has("multiplyByLearningRate"))
                    throw new SpecException(d.Path + ".multiplyByLearningRate",
                        "required key is missing: true shrinks by lr*rate (PyTorch AdamW, Keras), false by rate alone (TF1 contrib AdamW)");
                return new WeightDecaySpec(d.Number("rate", 0, 1, exclusiveMin: true), WeightDecayForm.Decoupled, parameters, d.Bool("multiplyByLearningRate", true));
            default:
                if (d.Has("rate"))
                    throw d.Get("rate").Error("a loss term takes 'coefficient' (loss += coefficient*sum(w^2), gradient 2*coefficient*w), not 'rate'");
                d.Object("form", "coefficient", "parameters");
                return new WeightDecaySpec(d.Number("coefficient", 0, 1, exclusiveMin: true), WeightDecayForm.L2Loss, parameters);
        }
    }

    private static DataSpec? ReadData(JsonCursor d, ulong seed)
    {
        // The sources and the batching keys are independent: each is checked even when another is wrong.
        var errors = d.Errors!;
        int before = errors.Count;
        d.Object("train", "eval", "batchSize", "shuffle", "shuffleSeed", "evalLimit");
        var train = errors.Read<DataSourceSpec?>(() => ReadSource(d.Get("train"), seed), null);
        var eval = errors.Read<DataSourceSpec?>(() => d.Optional("eval") is { } e ? ReadSource(e, seed + 1) : null, null);
        int? evalLimit = errors.Read<int?>(() => d.Has("evalLimit") ? d.Int("evalLimit", 1, int.MaxValue) : null, null);
        int batchSize = errors.Read(() => d.Int("batchSize", 1, 1 << 20), 0);
        bool shuffle = errors.Read(() => d.Bool("shuffle", true), true);
        ulong shuffleSeed = errors.Read(() => d.Seed("shuffleSeed", seed), seed);
        return errors.Count > before ? null : new DataSpec(train!, eval, batchSize, shuffle, shuffleSeed, evalLimit);
    }

    private static DataSourceSpec ReadSource(JsonCursor s, ulong seed)
    {
        string type = s.TypedObject().Choice("type", null, "idx", "synthetic", "csv", "npy", "npz");
        int? Limit() => s.Has("limit") ? s.Int("limit", 1, int.MaxValue) : null;
        switch (type)
        {
            case "csv":
                s.Object("type", "path", "label", "features", "separator", "limit");
                var columns = s.Optional("features")?.Array(1, MaxWidth).Select(f => f.String()).ToArray();
                if (columns is not null && columns.Distinct(StringComparer.Ordinal).Count() != columns.Length)
                    throw s.Get("features").Error("a column is named twice");
                string label = NonEmpty(s, "label");
                if (columns?.Contains(label) == true) throw s.Get("features").Error($"the label column '{label}' cannot also be a feature");
                string separator = s.String("separator", ",");
                if (separator.Length != 1 || separator[0] is '"' or '\r' or '\n')
                    throw s.Get("separator").Error($"'{separator}' is not one character other than a quote or a line break");
                return new CsvSourceSpec(NonEmpty(s, "path"), label, columns, separator[0], Limit());
            case "npy":
                s.Object("type", "inputs", "labels", "limit");
                return new NumpySourceSpec(null, NonEmpty(s, "inputs"), NonEmpty(s, "labels"), Limit());
            case "npz":
                s.Object("type", "path", "inputs", "labels", "limit");
                return new NumpySourceSpec(NonEmpty(s, "path"), NonEmpty(s, "inputs"), NonEmpty(s, "labels"), Limit());
        }
        if (type == "idx")
        {
            s.Object("type", "images", "labels", "limit", "normalize");
            return new IdxSourceSpec(NonEmpty(s, "images"), NonEmpty(s, "labels"), Limit(), s.Bool("normalize", true));
        }
        s.Object("type", "generator", "samples", "features", "classes", "seed", "teacherSeed");
        int samples = s.Int("samples", 1, 10_000_000), features = s.Int("features", 1, MaxWidth);
        if ((long)samples * features > MaxDataElements) throw s.Error($"{samples} samples of {features} features exceed the limit of {MaxDataElements} values");
        string generator = s.Choice("generator", "teacher", "teacher", "gaussian", "regression");
        int classes = s.Int("classes", 2, 10_000);
        if (generator is "teacher" or "regression")
        {
            // The teacher (Data/SyntheticData.cs) holds features x 2 features and 2 features x classes weights
            // and labels each sample with as many multiply-adds: bound both before anything is allocated.
            long teacherWeights = 2L * features * (features + classes);
            if (teacherWeights > MaxWeightElements)
                throw s.Get("features").Error($"a teacher for {features} features and {classes} classes needs {teacherWeights} weights, more than the limit of {MaxWeightElements}; use fewer features or the 'gaussian' generator");
            if (teacherWeights * samples > MaxTeacherWork)
                throw s.Get("samples").Error($"labelling {samples} samples by a teacher for {features} features takes {teacherWeights * samples} multiply-adds, more than the limit of {MaxTeacherWork}; use fewer samples or features or the 'gaussian' generator");
        }
        return new SyntheticSourceSpec(generator, samples, features, classes, s.Seed("seed", seed), s.Seed("teacherSeed", 0));
    }

    private static string NonEmpty(JsonCursor s, string key)
    {
        string v = s.String(key);
        if (v.Length == 0 || v.Contains('\0', StringComparison.Ordinal)) throw s.Get(key).Error("expected a file path");
        return v;
    }

    private static ScheduleSpec ReadSchedule(JsonCursor t, JsonCursor? e)
    {
        t.Object("steps", "epochs");
        if (t.Has("steps") == t.Has("epochs")) throw t.Error("give exactly one of 'steps' or 'epochs'");
        int? steps = t.Has("steps") ? t.Int("steps", 1, 100_000_000) : null;
        int? epochs = t.Has("epochs") ? t.Int("epochs", 1, 1_000_000) : null;
        int every = e is { } ev ? ev.Object("every", "batchSize").Int("every", 0, 100_000_000, 0) : 0;
        int? evalBatch = e is { } eb && eb.Has("batchSize") ? eb.Int("batchSize", 1, 1 << 20) : null;
        return new ScheduleSpec(steps, epochs, every, evalBatch);
    }

    private static CaptureSpec ReadCapture(JsonCursor? c)
    {
        if (c is not { } cap) return new CaptureSpec(null, TensorKinds.All);
        cap.Object("steps", "kinds");
        CaptureSteps? steps = null;
        if (cap.Has("steps"))
        {
            var s = cap.Get("steps");
            if (s.Element.ValueKind == JsonValueKind.String)
            {
                steps = s.String() switch
                {
                    "all" => CaptureSteps.Everything,
                    "auto" => null,
                    _ => throw s.Error("expected \"all\", \"auto\" or an object of 'first', 'every' and 'last'"),
                };
            }
            else
            {
                s.Object("every", "first", "last");
                if (!s.Has("every") && !s.Has("first")) throw s.Error("give 'first', 'every' or both");
                steps = new CaptureSteps(false, s.Has("first") ? s.Int("first", 0, 100_000_000) : 0, s.Has("every") ? s.Int("every", 1, 100_000_000) : 0, s.Bool("last", true));
            }
        }
        IReadOnlySet<TensorKind> kinds = TensorKinds.All;
        if (cap.Has("kinds"))
        {
            var set = new HashSet<TensorKind> { TensorKind.Loss, TensorKind.TrainAccuracy, TensorKind.EvalLoss, TensorKind.EvalAccuracy };
            foreach (var k in cap.Get("kinds").Array(0, 64))
                set.Add(TensorKinds.TryParse(k.String()) ?? throw k.Error($"unknown tensor kind '{k.String()}'; expected one of: {string.Join(", ", TensorKinds.All.Select(x => x.Name()))}"));
            kinds = set;
        }
        return new CaptureSpec(steps, kinds);
    }

    private static ToleranceOverrides ReadTolerances(JsonCursor t)
    {
        t.Object("kinds", "envelopeMultiple", "envelopeFloor");
        var byKind = new Dictionary<string, (double, double)>();
        if (t.Optional("kinds") is { } kinds)
        {
            if (kinds.Element.ValueKind != JsonValueKind.Object) throw kinds.Error($"expected an object, found {JsonCursor.Describe(kinds.Element)}");
            foreach (var p in kinds.Element.EnumerateObject())
            {
                var k = kinds.Get(p.Name).Object("atol", "rtol");
                var kind = TensorKinds.TryParse(p.Name) ?? throw k.Error($"unknown tensor kind '{p.Name}'; expected one of: {string.Join(", ", TensorKinds.All.Select(x => x.Name()))}");
                if (byKind.ContainsKey(kind.Name())) throw k.Error($"duplicate key: tensor kind '{kind.Name()}' is given twice");
                byKind[kind.Name()] = (k.Number("atol", 0, 1e6), k.Number("rtol", 0, 1e6));
            }
        }
        double? multiple = t.Has("envelopeMultiple") ? t.Number("envelopeMultiple", 1, 1e6) : null;
        double? floor = t.Has("envelopeFloor") ? t.Number("envelopeFloor", 0, 1) : null;
        return new ToleranceOverrides(byKind, multiple, floor);
    }

    private static string FirstSentence(string message)
    {
        int i = message.IndexOf(" Path:", StringComparison.Ordinal);
        return (i > 0 ? message[..i] : message).Trim();
    }
}
