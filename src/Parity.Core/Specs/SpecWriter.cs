using System.Text;
using System.Text.Json;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Specs;

/// <summary>
/// Writes a spec as canonical JSON: every default made explicit, keys in a fixed order, call ids
/// resolved. It is what out-of-process workers receive, so a worker never re-implements defaults, and
/// what <see cref="SpecLoader.Hash"/> is taken over. <see cref="SpecLoader.Parse"/> reads it back to an equal spec.
/// </summary>
public static class SpecWriter
{
    /// <summary>The canonical JSON text.</summary>
    public static string Write(ScenarioSpec spec)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("name", spec.Name);
            w.WriteString("description", spec.Description);
            w.WriteNumber("seed", spec.Seed);
            w.WriteString("dtype", spec.DType.Name());
            WriteModel(w, spec.Model);
            w.WriteStartObject("init");
            w.WriteString("mode", spec.Init.Mode == InitMode.Injected ? "injected" : "framework");
            w.WriteNumber("seed", spec.Init.Seed);
            if (spec.Init.From is { } from) w.WriteString("from", from);
            w.WriteEndObject();
            WriteLoss(w, spec.Loss);
            WriteOptimizer(w, spec.Optimizer);
            WriteData(w, spec.Data);
            w.WriteStartObject("training");
            if (spec.Schedule.Steps is int s) w.WriteNumber("steps", s);
            else w.WriteNumber("epochs", spec.Schedule.Epochs!.Value);
            w.WriteEndObject();
            w.WriteStartObject("evaluation");
            w.WriteNumber("every", spec.Schedule.EvalEvery);
            if (spec.Schedule.EvalBatchSize is int evalBatch) w.WriteNumber("batchSize", evalBatch);
            w.WriteEndObject();
            WriteCapture(w, spec.Capture);
            if (spec.Tolerances is { } t) WriteTolerances(w, t);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteModel(Utf8JsonWriter w, ModelSpec m)
    {
        w.WriteStartObject("model");
        w.WriteNumber("inputs", m.Inputs);
        w.WriteStartArray("layers");
        foreach (var layer in m.Layers)
        {
            w.WriteStartObject();
            w.WriteString("name", layer.Name);
            w.WriteString("type", layer.Type);
            switch (layer)
            {
                case LinearSpec l:
                    w.WriteNumber("in", l.In);
                    w.WriteNumber("out", l.Out);
                    w.WriteBoolean("bias", l.Bias);
                    w.WriteStartObject("init");
                    WriteInitializer(w, "weight", l.WeightInit);
                    WriteInitializer(w, "bias", l.BiasInit);
                    w.WriteEndObject();
                    break;
                case BatchNormSpec bn:
                    w.WriteNumber("features", bn.Features);
                    w.WriteNumber("momentum", bn.Momentum);
                    w.WriteNumber("eps", bn.Eps);
                    w.WriteString("runningVariance", bn.RunningVariance == RunningVarianceEstimator.Unbiased ? "unbiased" : "biased");
                    w.WriteBoolean("affine", bn.Affine);
                    break;
                case LayerNormSpec ln:
                    w.WriteNumber("features", ln.Features);
                    w.WriteNumber("eps", ln.Eps);
                    w.WriteBoolean("affine", ln.Affine);
                    break;
                case LeakyReluSpec leaky:
                    w.WriteNumber("slope", leaky.Slope);
                    break;
                case GeluSpec gelu:
                    w.WriteString("approximation", gelu.Approximation == GeluApproximation.Exact ? "exact" : "tanh");
                    break;
                case EluSpec elu:
                    w.WriteNumber("alpha", elu.Alpha);
                    break;
                case DropoutSpec dropout:
                    w.WriteNumber("p", dropout.P);
                    w.WriteString("masks", dropout.Masks == DropoutMasks.Harness ? "harness" : "framework");
                    break;
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("calls");
        foreach (var c in m.Calls)
        {
            w.WriteStartObject();
            w.WriteString("id", c.Id);
            w.WriteString("layer", c.Layer);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteInitializer(Utf8JsonWriter w, string key, InitializerSpec init)
    {
        w.WriteStartObject(key);
        w.WriteString("type", init.Kind);
        if (init.Kind == "normal") w.WriteNumber("std", init.Std);
        w.WriteEndObject();
    }

    // The default is written as the bare name it always was, so the canonical text (and hash) of a spec without a loss
    // setting is what it was before losses became a setting.
    private static void WriteLoss(Utf8JsonWriter w, LossSpec loss)
    {
        if (loss == LossSpec.Default)
        {
            w.WriteString("loss", loss.Type);
            return;
        }
        w.WriteStartObject("loss");
        w.WriteString("type", loss.Type);
        w.WriteNumber("labelSmoothing", loss.LabelSmoothing);
        w.WriteString("targets", loss.TargetsName);
        w.WriteEndObject();
    }

    private static void WriteOptimizer(Utf8JsonWriter w, OptimizerSpec o)
    {
        w.WriteStartObject("optimizer");
        w.WriteString("type", o.Type);
        w.WriteNumber("lr", o.LearningRate);
        switch (o)
        {
            case SgdSpec sgd:
                w.WriteNumber("momentum", sgd.Momentum);
                // Written only when set, as the schedule and clip below, so specs without them keep their hash
                // (workers read an absent key as the default: no Nesterov, the PyTorch form, constant lr, no clipping).
                if (sgd.Nesterov) w.WriteBoolean("nesterov", true);
                if (sgd.MomentumForm != MomentumForm.PyTorch) w.WriteString("momentumForm", "keras");
                break;
            case AdamSpec a:
                w.WriteNumber("beta1", a.Beta1);
                w.WriteNumber("beta2", a.Beta2);
                w.WriteNumber("eps", a.Eps);
                w.WriteString("epsilonForm", a.EpsilonForm == EpsilonForm.SqrtVHat ? "sqrtVHat" : "epsilonHat");
                w.WriteString("betaPrecision", a.BetaPrecision == BetaPrecision.Float64 ? "float64" : "float32");
                break;
            case RmspropSpec r:
                w.WriteNumber("rho", r.Rho);
                w.WriteNumber("eps", r.Eps);
                w.WriteString("epsilonPlacement", PlacementName(r.EpsilonPlacement));
                w.WriteNumber("meanSquareInit", r.MeanSquareInit);
                w.WriteNumber("momentum", r.Momentum);
                w.WriteBoolean("centered", r.Centered);
                break;
            case AdagradSpec a:
                w.WriteNumber("initialAccumulator", a.InitialAccumulator);
                w.WriteNumber("eps", a.Eps);
                w.WriteString("epsilonPlacement", PlacementName(a.EpsilonPlacement));
                break;
        }
        if (o.WeightDecay is { } decay) WriteWeightDecay(w, decay);
        WriteScheduleAndClipping(w, o);
        w.WriteEndObject();
    }

    private static void WriteScheduleAndClipping(Utf8JsonWriter w, OptimizerSpec o)
    {
        if (!o.Schedule.IsConstant) WriteSchedule(w, o.Schedule);
        if (o.Clipping is not { } clip) return;
        w.WriteStartObject("clip");
        w.WriteString("type", clip.Type);
        if (clip.Scope == ClipScope.Value) w.WriteNumber("value", clip.Threshold);
        else
        {
            w.WriteNumber("maxNorm", clip.Threshold);
            w.WriteNumber("eps", clip.Eps);
        }
        w.WriteEndObject();
    }

    private static void WriteSchedule(Utf8JsonWriter w, LearningRateSchedule schedule)
    {
        w.WriteStartObject("schedule");
        w.WriteString("type", schedule.Type);
        switch (schedule)
        {
            case StepSchedule step:
                w.WriteNumber("stepSize", step.StepSize);
                w.WriteNumber("gamma", step.Gamma);
                break;
            case ExponentialSchedule e:
                w.WriteNumber("decaySteps", e.DecaySteps);
                w.WriteNumber("rate", e.Rate);
                w.WriteBoolean("staircase", e.Staircase);
                break;
            case CosineSchedule c:
                w.WriteNumber("decaySteps", c.DecaySteps);
                w.WriteNumber("minLr", c.MinLearningRate);
                break;
        }
        w.WriteEndObject();
    }

    private static void WriteWeightDecay(Utf8JsonWriter w, WeightDecaySpec d)
    {
        w.WriteStartObject("weightDecay");
        w.WriteString("form", d.FormName);
        w.WriteNumber(d.Form == WeightDecayForm.L2Loss ? "coefficient" : "rate", d.Rate);
        w.WriteString("parameters", d.Parameters == DecayedParameters.All ? "all" : "weights");
        if (d.Form == WeightDecayForm.Decoupled) w.WriteBoolean("multiplyByLearningRate", d.MultiplyByLearningRate);
        w.WriteEndObject();
    }

    private static string PlacementName(EpsilonPlacement p) => p == EpsilonPlacement.Outside ? "outside" : "inside";

    private static void WriteData(Utf8JsonWriter w, DataSpec d)
    {
        w.WriteStartObject("data");
        WriteSource(w, "train", d.Train);
        if (d.Eval is not null) WriteSource(w, "eval", d.Eval);
        w.WriteNumber("batchSize", d.BatchSize);
        w.WriteBoolean("shuffle", d.Shuffle);
        w.WriteNumber("shuffleSeed", d.ShuffleSeed);
        if (d.EvalLimit is int limit) w.WriteNumber("evalLimit", limit);
        w.WriteEndObject();
    }

    private static void WriteSource(Utf8JsonWriter w, string key, DataSourceSpec s)
    {
        w.WriteStartObject(key);
        w.WriteString("type", s.Type);
        switch (s)
        {
            case IdxSourceSpec idx:
                w.WriteString("images", idx.Images);
                w.WriteString("labels", idx.Labels);
                if (idx.Limit is int limit) w.WriteNumber("limit", limit);
                w.WriteBoolean("normalize", idx.Normalize);
                break;
            case CsvSourceSpec csv:
                w.WriteString("path", csv.Path);
                w.WriteString("label", csv.Label);
                if (csv.Features is { } features)
                {
                    w.WriteStartArray("features");
                    foreach (string f in features) w.WriteStringValue(f);
                    w.WriteEndArray();
                }
                w.WriteString("separator", csv.Separator.ToString());
                if (csv.Limit is int csvLimit) w.WriteNumber("limit", csvLimit);
                break;
            case NumpySourceSpec npy:
                if (npy.Archive is { } archive) w.WriteString("path", archive);
                w.WriteString("inputs", npy.Inputs);
                w.WriteString("labels", npy.Labels);
                if (npy.Limit is int npyLimit) w.WriteNumber("limit", npyLimit);
                break;
            case SyntheticSourceSpec syn:
                w.WriteString("generator", syn.Generator);
                w.WriteNumber("samples", syn.Samples);
                w.WriteNumber("features", syn.Features);
                w.WriteNumber("classes", syn.Classes);
                w.WriteNumber("seed", syn.Seed);
                w.WriteNumber("teacherSeed", syn.TeacherSeed);
                break;
        }
        w.WriteEndObject();
    }

    private static void WriteCapture(Utf8JsonWriter w, CaptureSpec c)
    {
        w.WriteStartObject("capture");
        if (c.Steps is null) w.WriteString("steps", "auto");
        else if (c.Steps.All) w.WriteString("steps", "all");
        else
        {
            w.WriteStartObject("steps");
            if (c.Steps.First > 0 || c.Steps.Every == 0) w.WriteNumber("first", c.Steps.First);
            if (c.Steps.Every > 0) w.WriteNumber("every", c.Steps.Every);
            w.WriteBoolean("last", c.Steps.Last);
            w.WriteEndObject();
        }
        w.WriteStartArray("kinds");
        foreach (var k in c.Kinds.OrderBy(k => k)) w.WriteStringValue(k.Name());
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteTolerances(Utf8JsonWriter w, ToleranceOverrides t)
    {
        w.WriteStartObject("tolerances");
        w.WriteStartObject("kinds");
        foreach (var (kind, (atol, rtol)) in t.ByKind.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            w.WriteStartObject(kind);
            w.WriteNumber("atol", atol);
            w.WriteNumber("rtol", rtol);
            w.WriteEndObject();
        }
        w.WriteEndObject();
        if (t.EnvelopeMultiple is double m) w.WriteNumber("envelopeMultiple", m);
        if (t.EnvelopeFloor is double f) w.WriteNumber("envelopeFloor", f);
        w.WriteEndObject();
    }
}
