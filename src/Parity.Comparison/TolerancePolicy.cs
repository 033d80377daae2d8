using System.Globalization;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Comparison;

/// <summary>
/// Every tolerance rule of Parity in one place (docs/tolerances.md). Immutable; built from the defaults,
/// then the spec's <c>tolerances</c>, then command-line values, later sources winning.
/// <para>
/// Two rules, both normwise (on the RMSE of the whole tensor, so one ReLU that flips between float32 and
/// float64 does not fail a 100,000-element gradient while a systematic error of 1e-3 does):
/// </para>
/// <list type="bullet">
/// <item><b>Noise envelope</b> (float32 actual against a float64 expected, when the float32 reference's
/// trace is given): pass when <c>RMSE(actual, ref64) &lt;= Multiple * E(s) + Floor * RMS(ref64) + AbsoluteFloor</c>,
/// where E(s) is the largest RMSE(envelope, ref64) of that tensor at any step up to s (torch._dynamo.utils.same:
/// <c>res_error &lt;= multiplier * ref_error + tol / 10</c>). Rounding growth is expected (E grows with it);
/// a jump is not (the actual error must stay within a multiple of the worst rounding seen so far).</item>
/// <item><b>Growing atol/rtol</b> otherwise: pass when <c>RMSE(actual, expected) &lt;= g(s) * (atol + rtol * RMS(expected))</c>
/// with <c>g(s) = (1 + s)^GrowthExponent</c>, s the step (0 for the initial state).</item>
/// </list>
/// </summary>
public sealed class TolerancePolicy
{
    /// <summary>Default envelope multiple (torch._dynamo.utils.same uses 2, and 3 where rounding is larger).</summary>
    public const double DefaultEnvelopeMultiple = 3;


    /// <summary>
    /// Default envelope floor, relative to the reference tensor's RMS: torch._dynamo.utils.same adds tol / 10 with
    /// tol = 1e-4 for float32, i.e. 1e-5 on tensors of unit scale.
    /// </summary>
    public const double DefaultEnvelopeFloor = 1e-5;

    /// <summary>
    /// Default exponent of the step growth g(s) = (1 + s)^exponent. 1 (linear): measured float32 drift grows at
    /// least linearly over the first steps of Adam training (0.5, a random walk, undershoots it by step 10).
    /// </summary>
    public const double DefaultGrowthExponent = 1;

    /// <summary>An absolute floor under every allowance, far below any float32 rounding, so an all-zero tensor can still fail.</summary>
    public const double AbsoluteFloor = 1e-30;

    private static readonly TensorKind[] Discrete = [TensorKind.TrainAccuracy, TensorKind.EvalAccuracy];

    private readonly Dictionary<TensorKind, Tolerance> _float32;
    private readonly Dictionary<TensorKind, Tolerance> _float64;
    private readonly Dictionary<TensorKind, string> _sources;

    private TolerancePolicy(Dictionary<TensorKind, Tolerance> float32, Dictionary<TensorKind, Tolerance> float64,
        Dictionary<TensorKind, string> sources, double multiple, double floor, double growthExponent)
    {
        _float32 = float32;
        _float64 = float64;
        _sources = sources;
        EnvelopeMultiple = multiple;
        EnvelopeFloor = floor;
        GrowthExponent = growthExponent;
    }

    /// <summary>The defaults alone.</summary>
    public static TolerancePolicy Default { get; } = Create();

    /// <summary>Multiple of the envelope error a float32 backend may reach.</summary>
    public double EnvelopeMultiple { get; }

    /// <summary>Floor added to the envelope allowance, relative to the reference tensor's RMS.</summary>
    public double EnvelopeFloor { get; }

    /// <summary>Exponent of the step growth of atol/rtol.</summary>
    public double GrowthExponent { get; }

    /// <summary>
    /// Builds the policy in force: defaults, then <paramref name="spec"/> (the spec's <c>tolerances</c>), then
    /// <paramref name="cli"/> (command-line values). A kind override applies to every dtype pair.
    /// </summary>
    /// <param name="spec">Overrides from the spec, or null.</param>
    /// <param name="cli">Overrides from the command line, or null.</param>
    /// <param name="growthExponent">Exponent of g(s); the default suits the fixtures (docs/tolerances.md).</param>
    public static TolerancePolicy Create(ToleranceOverrides? spec = null, ToleranceOverrides? cli = null, double growthExponent = DefaultGrowthExponent)
    {
        if (!(growthExponent >= 0 && growthExponent <= 4)) throw new ArgumentOutOfRangeException(nameof(growthExponent), growthExponent, "the growth exponent must lie in [0, 4]");
        var float32 = new Dictionary<TensorKind, Tolerance>();
        var float64 = new Dictionary<TensorKind, Tolerance>();
        var sources = new Dictionary<TensorKind, string>();
        foreach (var kind in Enum.GetValues<TensorKind>())
        {
            float32[kind] = DefaultFloat32(kind);
            float64[kind] = DefaultFloat64(kind);
            sources[kind] = "default";
        }
        double multiple = DefaultEnvelopeMultiple, floor = DefaultEnvelopeFloor;
        foreach (var (overrides, source) in new[] { (spec, "spec"), (cli, "cli") })
        {
            if (overrides is null) continue;
            foreach (var (name, (atol, rtol)) in overrides.ByKind)
            {
                var kind = TensorKinds.TryParse(name)
                    ?? throw new ArgumentException($"{source} tolerances: unknown tensor kind '{name}'; kinds are: {string.Join(", ", Enum.GetValues<TensorKind>().Select(k => k.Name()))}");
                var tolerance = new Tolerance(atol, rtol);
                float32[kind] = tolerance;
                float64[kind] = tolerance;
                sources[kind] = source;
            }
            if (overrides.EnvelopeMultiple is double m)
            {
                if (!(m >= 1)) throw new ArgumentException($"{source} tolerances: envelopeMultiple must be at least 1, got {m}");
                multiple = m;
            }
            if (overrides.EnvelopeFloor is double f)
            {
                if (!(f >= 0)) throw new ArgumentException($"{source} tolerances: envelopeFloor must be at least 0, got {f}");
                floor = f;
            }
        }
        return new TolerancePolicy(float32, float64, sources, multiple, floor, growthExponent);
    }

    /// <summary>
    /// Parses command-line tolerance values: comma-separated <c>kind=atol:rtol</c>, <c>all=atol:rtol</c>,
    /// <c>multiple=M</c>, <c>floor=F</c>, e.g. <c>loss=1e-6:1e-5,multiple=4</c>. Throws
    /// <see cref="ArgumentException"/> naming the bad item.
    /// </summary>
    public static ToleranceOverrides ParseOverrides(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var byKind = new Dictionary<string, (double, double)>();
        double? multiple = null, floor = null;
        foreach (string raw in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = raw.IndexOf('=');
            if (eq <= 0) throw new ArgumentException($"tolerance '{raw}': expected kind=atol:rtol, multiple=M or floor=F");
            string name = raw[..eq].Trim(), value = raw[(eq + 1)..].Trim();
            switch (name.ToLowerInvariant())
            {
                case "multiple":
                    multiple = Number(raw, value);
                    break;
                case "floor":
                    floor = Number(raw, value);
                    break;
                default:
                    string[] parts = value.Split(':');
                    if (parts.Length != 2) throw new ArgumentException($"tolerance '{raw}': expected {name}=atol:rtol, e.g. {name}=1e-6:1e-5");
                    var pair = (Number(raw, parts[0]), Number(raw, parts[1]));
                    if (name.Equals("all", StringComparison.OrdinalIgnoreCase))
                    {
                        foreach (var kind in Enum.GetValues<TensorKind>()) byKind[kind.Name()] = pair;
                    }
                    else
                    {
                        var kind = TensorKinds.TryParse(name)
                            ?? throw new ArgumentException($"tolerance '{raw}': unknown tensor kind '{name}'; kinds are: all, {string.Join(", ", Enum.GetValues<TensorKind>().Select(k => k.Name()))}");
                        byKind[kind.Name()] = pair;
                    }
                    break;
            }
        }
        return new ToleranceOverrides(byKind, multiple, floor);
    }

    /// <summary>
    /// The atol/rtol of <paramref name="kind"/> for this dtype pair before step growth: the float64 table when
    /// both tensors are float64, else the float32 table (the coarser precision decides).
    /// </summary>
    public Tolerance BaseTolerance(TensorKind kind, DType actual, DType expected) =>
        actual == DType.Float64 && expected == DType.Float64 ? _float64[kind] : _float32[kind];

    /// <summary>g(s) = (1 + s)^GrowthExponent: how much atol/rtol grow by step <paramref name="step"/>.</summary>
    public double Growth(int step) => Math.Pow(1 + Math.Max(0, step), GrowthExponent);

    /// <summary>True for kinds whose tolerance grows with the step: all but the accuracies, which count samples.</summary>
    public static bool Grows(TensorKind kind) => !Discrete.Contains(kind);

    /// <summary>
    /// The tolerance in force for one tensor: <c>atol' = g(s) (atol + rtol RMS(expected))</c>, <c>rtol' = g(s) rtol</c>.
    /// atol' is also the RMSE allowed; adding <c>rtol RMS</c> to atol makes the absolute floor follow the
    /// tensor's scale, as rounding in a sum follows the size of its terms, not of its result.
    /// </summary>
    public Tolerance ToleranceAt(TensorKind kind, int step, DType actual, DType expected, double referenceRms)
    {
        var t = BaseTolerance(kind, actual, expected);
        double g = Grows(kind) ? Growth(step) : 1;
        double rms = double.IsFinite(referenceRms) ? referenceRms : 0;
        return new Tolerance(g * (t.Atol + t.Rtol * rms), g * t.Rtol);
    }

    /// <summary>
    /// True when the noise envelope judges this tensor: a float32 actual against a float64 expected, for any
    /// kind but the accuracies (a count of argmax flips is not a rounding error that scales).
    /// </summary>
    public static bool UsesEnvelope(TensorKind kind, DType actual, DType expected) =>
        actual == DType.Float32 && expected == DType.Float64 && !Discrete.Contains(kind);

    /// <summary>The RMSE allowed under the envelope: <c>Multiple * E + Floor * RMS(expected) + AbsoluteFloor</c>.</summary>
    /// <param name="envelopeError">E(s): the largest RMSE(envelope, expected) of this tensor up to this step.</param>
    /// <param name="referenceRms">RMS of the expected tensor.</param>
    public double EnvelopeAllowance(double envelopeError, double referenceRms) =>
        EnvelopeMultiple * envelopeError + EnvelopeFloor * (double.IsFinite(referenceRms) ? referenceRms : 0) + AbsoluteFloor;

    /// <summary>
    /// The RMSE a step check allows: <c>Multiple * E</c>, E the envelope replays' error on this tensor at this step and
    /// the nearest checked steps before it (<see cref="StepNoise"/>), each replayed from the backend's state. The relative
    /// floor applies only where that noise is exactly zero (an exact operation, a
    /// count): elsewhere it would let a consistent error hide under it, such as eps added outside the square root of a
    /// batchnorm (4.7e-6 relative, under a 1e-5 floor, yet 38 times the float32 rounding of that tensor).
    /// </summary>
    /// <param name="envelopeError">E: the largest RMSE(envelope, expected) of this tensor over the window's draws.</param>
    /// <param name="referenceRms">RMS of the expected tensor.</param>
    /// <param name="resolution">
    /// RMS of the spacing of the actual dtype's numbers at the expected values (<see cref="Resolution"/>): no backend of that
    /// dtype can come closer than about that, so the allowance never drops below it (a scalar loss one float32 ulp away
    /// from float64 is rounding whatever a lucky envelope draw says).
    /// </param>
    public double StepAllowance(double envelopeError, double referenceRms, double resolution = 0) =>
        Math.Max(EnvelopeMultiple * envelopeError + (envelopeError == 0 ? EnvelopeFloor * (double.IsFinite(referenceRms) ? referenceRms : 0) : 0), resolution)
        + AbsoluteFloor;

    /// <summary>
    /// RMS over the elements of <paramref name="expected"/> of the spacing between adjacent numbers of <paramref name="dtype"/>
    /// at each value (one ulp): the finest difference a backend computing in that dtype can show.
    /// </summary>
    public static double Resolution(Tensor expected, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(expected);
        double sum = 0;
        int n = 0;
        foreach (double v in expected.Data)
        {
            if (!double.IsFinite(v)) continue;
            double ulp = dtype == DType.Float32
                ? MathF.BitIncrement(MathF.Abs((float)v)) - MathF.Abs((float)v)
                : Math.BitIncrement(Math.Abs(v)) - Math.Abs(v);
            sum += ulp * ulp;
            n++;
        }
        return n == 0 ? 0 : Math.Sqrt(sum / n);
    }

    /// <summary>
    /// How many envelope draws (independent float32 replays of a step) at least a step check's noise estimate of a tensor
    /// rests on (<see cref="StepNoise"/>). The actual error and one draw are alike in scale but heavy-tailed in ratio: for a
    /// scalar, P(actual &gt; 3 x draw) is about 20% with one draw and falls to about 0.03% with the worst of 10 and to
    /// nothing measurable with 20 (half-normal errors, 400,000 trials).
    /// </summary>
    public const int StepNoiseDraws = 20;

    /// <summary>
    /// How many more draws of a step a step check replays before it believes a tensor's failure there. A real error
    /// stays outside the noise of 40 more draws; a chance underestimate of a small tensor's rounding does not.
    /// </summary>
    public const int ConfirmationDraws = 40;

    /// <summary>
    /// The envelope error a trajectory tensor is judged against: the worst of this step's and every earlier step's (the
    /// trajectories' errors accumulate: growth is expected and kept; a dip does not tighten the bound).
    /// </summary>
    /// <param name="here">This step's largest envelope RMSE, or null when no envelope has the tensor.</param>
    /// <param name="worstEarlier">The worst so far, or null.</param>
    public static double? TrajectoryEnvelopeError(double? here, double? worstEarlier) =>
        here is double h ? Math.Max(h, worstEarlier ?? 0) : worstEarlier;

    /// <summary>
    /// The loss error the logits' own error allows: to first order the mean softmax cross-entropy changes by
    /// (1/N) sum_i (softmax_i - onehot_i) . dz_i, and |softmax - onehot| &lt;= sqrt(2), so by Cauchy-Schwarz
    /// |dL| &lt;= sqrt(2 C) * RMSE(dz) for C classes. A scalar loss is one heavy-tailed draw of rounding (a float32
    /// run's errors may cancel in it by luck), so the envelope alone misjudges it; a loss that stays within what
    /// its logits imply is consistent with them, and a wrong loss formula (clipping, a sum for a mean) is not.
    /// </summary>
    /// <param name="logitsRmse">RMSE of the logits the loss was computed from (actual against expected).</param>
    /// <param name="classes">Number of classes.</param>
    public static double LossAllowanceFromLogits(double logitsRmse, int classes) => Math.Sqrt(2.0 * classes) * logitsRmse;

    /// <summary>
    /// A scalar loss judged also against what its logits imply (<see cref="LossAllowanceFromLogits"/>): the larger
    /// allowance wins. Applied only when the logits themselves passed.
    /// </summary>
    public static Judgement WithLogitsAllowance(Judgement judgement, TensorMetrics metrics, double logitsRmse, int classes)
    {
        ArgumentNullException.ThrowIfNull(judgement);
        ArgumentNullException.ThrowIfNull(metrics);
        double implied = LossAllowanceFromLogits(logitsRmse, classes);
        return double.IsFinite(judgement.Score) && implied > judgement.Allowed ? judgement with { Score = metrics.Rmse / implied, Allowed = implied } : judgement;
    }

    /// <summary>
    /// The accuracy difference the logits' own error allows: an argmax can flip only in a sample whose expected margin
    /// (largest logit minus the runner-up) is at most twice the largest error of that sample's logits, since no logit
    /// moved by more than that error. Each such sample can change the accuracy by 1/N; every other sample's
    /// prediction is the same in both traces, so the accuracies differ by at most (ambiguous samples) / N. The observed
    /// logits error is used, so a CPU whose kernels round differently moves the allowance with it, and an accuracy
    /// that differs while the logits agree (a wrong count, a wrong argmax tie rule) still fails.
    /// </summary>
    /// <param name="expectedLogits">Expected logits, [N, classes].</param>
    /// <param name="actualLogits">Actual logits of the same samples.</param>
    /// <returns>The largest accuracy difference the logits explain (a fraction of N), or null when the shapes do not allow the rule.</returns>
    public static double? AccuracyAllowanceFromLogits(Tensor expectedLogits, Tensor actualLogits)
    {
        ArgumentNullException.ThrowIfNull(expectedLogits);
        ArgumentNullException.ThrowIfNull(actualLogits);
        if (expectedLogits.Shape.Length != 2 || !expectedLogits.SameShape(actualLogits) || expectedLogits.Shape[0] == 0) return null;
        int rows = expectedLogits.Shape[0], classes = expectedLogits.Shape[1];
        double[] e = expectedLogits.Data, a = actualLogits.Data;
        int ambiguous = 0;
        for (int r = 0; r < rows; r++)
        {
            double best = double.NegativeInfinity, second = double.NegativeInfinity, error = 0;
            for (int c = 0; c < classes; c++)
            {
                double v = e[r * classes + c];
                if (v > best) (best, second) = (v, best);
                else if (v > second) second = v;
                double d = Math.Abs(a[r * classes + c] - v);
                error = double.IsNaN(d) ? double.PositiveInfinity : Math.Max(error, d);
            }
            if (!(best - second > 2 * error)) ambiguous++;
        }
        return (double)ambiguous / rows;
    }

    /// <summary>
    /// Judges an accuracy against <see cref="AccuracyAllowanceFromLogits"/>: the score is |difference| / allowance, the
    /// allowance widened by the float32 rounding of two fractions (accuracies are stored in the trace's dtype, so 0.77
    /// and 0.775 differ by 0.005 plus the rounding of 0.77).
    /// </summary>
    public static Judgement JudgeAccuracy(TensorMetrics metrics, double allowance)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        double allowed = allowance + AccuracyRoundingFloor;
        double score = metrics.ShapeMismatch || metrics.NonFiniteMismatched > 0 || double.IsNaN(metrics.Rmse) ? double.PositiveInfinity : metrics.MaxAbs / allowed;
        return new Judgement(score, allowed, JudgementRule.Logits);
    }

    /// <summary>Float32 rounding of two fractions in [0, 1] (2^-24 each): added to an accuracy allowance.</summary>
    public const double AccuracyRoundingFloor = 1.2e-7;

    /// <summary>
    /// Judges one tensor's metrics: the score is observed RMSE / allowed RMSE (above 1 fails). Non-finite
    /// mismatches and shape mismatches score infinity.
    /// </summary>
    /// <param name="metrics">Metrics of actual against expected.</param>
    /// <param name="tolerance">The tolerance in force (<see cref="ToleranceAt"/>).</param>
    /// <param name="envelopeError">E(s) when the envelope rule applies, else null.</param>
    /// <param name="mode">A step check allows the noise of this step alone (<see cref="StepAllowance"/>).</param>
    /// <param name="resolution">In a step check, the actual dtype's resolution at the expected values (<see cref="Resolution"/>).</param>
    public Judgement Judge(TensorMetrics metrics, Tolerance tolerance, double? envelopeError, ComparisonMode mode = ComparisonMode.Trajectory, double resolution = 0)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        ArgumentNullException.ThrowIfNull(tolerance);
        bool envelope = envelopeError is double e && double.IsFinite(e);
        double allowed = !envelope ? Math.Max(tolerance.Atol, AbsoluteFloor)
            : mode == ComparisonMode.StepCheck ? StepAllowance(envelopeError!.Value, metrics.ReferenceRms, resolution)
            : EnvelopeAllowance(envelopeError!.Value, metrics.ReferenceRms);
        double score = metrics.ShapeMismatch || metrics.NonFiniteMismatched > 0 || double.IsNaN(metrics.Rmse)
            ? double.PositiveInfinity
            : metrics.Rmse / allowed;
        return new Judgement(score, allowed, envelope ? JudgementRule.Envelope : JudgementRule.Tolerance);
    }

    /// <summary>The policy in force, as the report writes it.</summary>
    public PolicyDescription Describe()
    {
        var kinds = new SortedDictionary<string, KindTolerance>(StringComparer.Ordinal);
        foreach (var kind in Enum.GetValues<TensorKind>())
            kinds[kind.Name()] = new KindTolerance(_float32[kind], _float64[kind], _sources[kind], !Discrete.Contains(kind));
        return new PolicyDescription(
            "Normwise: a tensor passes when its RMSE against the expected tensor is within the allowance. Float32 against float64 "
            + "with an envelope trace: allowance = multiple * E(s) + floor * RMS(expected) + absoluteFloor, E(s) = the largest "
            + "RMSE(envelope, expected) of that tensor over every envelope trace up to step s. A step check (each step replayed from the backend's own state) "
            + "allows multiple * E, E the envelope replays' worst error on that tensor over that step's draws and the nearest earlier checked steps' (" + StepNoiseDraws + " draws at least), with the floor only where E is exactly 0, and never below one ulp of the actual dtype at the expected values. "
            + "A scalar loss may also differ by what its logits' observed error implies, sqrt(2 C) * RMSE(logits); an accuracy by the samples whose "
            + "logit margin lies within twice their logits' largest error. Otherwise: allowance = g(s) * (atol + rtol * RMS(expected)), "
            + "g(s) = (1 + s)^growthExponent (accuracies do not grow); the mismatched count uses |a - e| <= atol' + rtol' * |e| with the same grown values. "
            + "float64 table when both tensors are float64, float32 table otherwise.",
            kinds, EnvelopeMultiple, EnvelopeFloor, AbsoluteFloor, GrowthExponent);
    }

    // Float32 defaults, from the largest normwise error RMSE/RMS / (1 + s) of reference-f32 against reference
    // (docs/tolerances.md has the table and the command): about twice what fixtures/seed000-shared-bn.json
    // reaches in 20 steps (ReLUs flipping at near ties, then Adam amplifying the difference), which is 10 to
    // 10,000 times what fixtures/synthetic-*.json reach in 50. Running statistics stay tight enough that a
    // 1e-3 change of one running variance is caught over 50 steps of the synthetic fixtures.
    private static Tolerance DefaultFloat32(TensorKind kind) => kind switch
    {
        // An accuracy moves in steps of 1/batch when one argmax flips at a near tie: judged in samples, not rounding.
        TensorKind.TrainAccuracy or TensorKind.EvalAccuracy => new Tolerance(0.05, 0),
        // A dropout mask is 0 or 1, not rounded: any difference is another mask.
        TensorKind.DropoutMask => new Tolerance(0, 0),
        // Measured 2.4e-6 (seed000-shared-bn, step 20).
        TensorKind.RunningMean or TensorKind.RunningVariance => new Tolerance(1e-8, 5e-6),
        // Measured 5.4e-6.
        TensorKind.BatchMean or TensorKind.BatchVariance => new Tolerance(1e-8, 1.5e-5),
        // Measured 7.2e-7.
        TensorKind.Loss => new Tolerance(1e-8, 1e-5),
        // Measured 2.6e-5, 2.2e-5 and 1.8e-5.
        TensorKind.Forward or TensorKind.Parameter or TensorKind.EvalLoss => new Tolerance(1e-8, 6e-5),
        // Measured 2.8e-4: eval outputs read running statistics that lag the drifting weights.
        TensorKind.EvalOutput => new Tolerance(1e-8, 6e-4),
        // Measured 1.6e-3 and 9.9e-4: one flipped ReLU changes one gradient element by its full size.
        _ => new Tolerance(1e-8, 4e-3),
    };

    // Two float64 implementations differ by summation order: float64 rounding is 2^-29 of float32's, so the
    // float32 figures scale to ~1e-15; 1e-10 leaves five orders for chaotic growth and still catches any
    // convention change.
    private static Tolerance DefaultFloat64(TensorKind kind) => kind switch
    {
        TensorKind.TrainAccuracy or TensorKind.EvalAccuracy => new Tolerance(1e-12, 0),
        TensorKind.DropoutMask => new Tolerance(0, 0),
        _ => new Tolerance(1e-14, 1e-10),
    };

    private static double Number(string item, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v) && v >= 0
            ? v
            : throw new ArgumentException($"tolerance '{item}': '{text}' is not a number >= 0");
}

/// <summary>Which rule judged a tensor.</summary>
public enum JudgementRule
{
    /// <summary>The noise envelope: within a multiple of the float32 reference's error against float64.</summary>
    Envelope,

    /// <summary>atol/rtol grown with the step.</summary>
    Tolerance,

    /// <summary>What the observed error of the logits implies (an accuracy: samples whose margin lies within that error).</summary>
    Logits,

    /// <summary>Not judged: the tensor is present in one trace only.</summary>
    Missing,
}

/// <summary>The outcome of judging one tensor.</summary>
/// <param name="Score">Observed RMSE / allowed RMSE; above 1 fails.</param>
/// <param name="Allowed">The RMSE allowed.</param>
/// <param name="Rule">Which rule applied.</param>
public sealed record Judgement(double Score, double Allowed, JudgementRule Rule)
{
    /// <summary>True when the score is at most 1.</summary>
    public bool Passed => Score <= 1;
}

/// <summary>One tensor kind's tolerances in the policy description.</summary>
/// <param name="Float32">atol/rtol when either tensor is float32.</param>
/// <param name="Float64">atol/rtol when both are float64.</param>
/// <param name="Source"><c>default</c>, <c>spec</c> or <c>cli</c>.</param>
/// <param name="Envelope">True when the noise envelope judges this kind for float32 against float64.</param>
public sealed record KindTolerance(Tolerance Float32, Tolerance Float64, string Source, bool Envelope);

/// <summary>The tolerance policy in force, as written into reports.</summary>
/// <param name="Rule">The rules in one paragraph.</param>
/// <param name="Kinds">Per tensor kind (camelCase name): the tolerances and where they came from.</param>
/// <param name="EnvelopeMultiple">Multiple of the envelope error allowed.</param>
/// <param name="EnvelopeFloor">Envelope floor relative to the reference RMS.</param>
/// <param name="AbsoluteFloor">Absolute floor under every allowance.</param>
/// <param name="GrowthExponent">Exponent of g(s) = (1 + s)^exponent.</param>
public sealed record PolicyDescription(
    string Rule,
    IReadOnlyDictionary<string, KindTolerance> Kinds,
    double EnvelopeMultiple,
    double EnvelopeFloor,
    double AbsoluteFloor,
    double GrowthExponent);
