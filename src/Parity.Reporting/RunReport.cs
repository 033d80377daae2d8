using Parity.Backends;
using Parity.Comparison;
using Parity.Running;

namespace Parity.Reporting;

/// <summary>
/// report.json: the machine-readable truth of a run (docs/report.md, docs/report.schema.json). Every other
/// format (HTML, JUnit, Markdown) is rendered from this record alone.
/// </summary>
public sealed record RunReport
{
    /// <summary>Always <c>parity-report</c>.</summary>
    public string Format { get; init; } = "parity-report";

    /// <summary>Schema version; bumped on any incompatible change (2: step checks and trajectory per comparison, optimizer-state kinds).</summary>
    public int Version { get; init; } = 2;

    /// <summary>The scenario.</summary>
    public required ScenarioInfo Scenario { get; init; }

    /// <summary>Where and when the run happened.</summary>
    public required MachineInfo Machine { get; init; }

    /// <summary>The backend every other backend is compared with.</summary>
    public required string Reference { get; init; }

    /// <summary>The tolerance policy in force, as the comparison engine describes it (<see cref="Comparison.TolerancePolicy.Describe"/>).</summary>
    public required PolicyDescription TolerancePolicy { get; init; }

    /// <summary>One entry per backend run, reference included.</summary>
    public required IReadOnlyList<BackendReport> Backends { get; init; }

    /// <summary>One comparison per non-reference backend against the reference.</summary>
    public required IReadOnlyList<ComparisonReport> Comparisons { get; init; }

    /// <summary>Every pair of completed traces (verdict and first divergence), for the matrix view.</summary>
    public IReadOnlyList<PairReport> Matrix { get; init; } = [];

    /// <summary>Diagnosed causes.</summary>
    public IReadOnlyList<FindingReport> Findings { get; init; } = [];

    /// <summary>ONNX Runtime's verdict on each training backend's final checkpoint, when <c>onnxruntime</c> was selected.</summary>
    public IReadOnlyList<ArbiterReport> Arbitration { get; init; } = [];

    /// <summary>Scalar curves per backend (loss, accuracies) and tracked state trajectories, for plots.</summary>
    public IReadOnlyList<SeriesReport> Series { get; init; } = [];

    /// <summary>Process exit code the run ended with: 0 agree, 1 divergence, 2 error.</summary>
    public int ExitCode { get; init; }

    /// <summary>The verdict of the whole run: <c>agree</c>, <c>diverge</c> or <c>error</c>.</summary>
    public Verdict Verdict { get; init; }
}

/// <summary>The scenario as run.</summary>
public sealed record ScenarioInfo(string Name, string Description, string SpecHash, string? SpecPath, string DType, int Steps, int StepsPerEpoch, int TrainSamples, int EvalSamples, string DataOrigin, IReadOnlyList<string> SharedInstances, IReadOnlyList<string> NotIdentifiable)
{
    /// <summary>The loss's type name (docs/spec.md, "Loss"); absent from reports written before losses were a setting.</summary>
    public string Loss { get; init; } = "softmax_cross_entropy";

    /// <summary>What the command line's capture filter (<c>--kinds</c>, <c>--sites</c>, <c>--steps-range</c>) left out, in one line; null when the run captured what the spec says.</summary>
    public string? CaptureFilter { get; init; }
}

/// <summary>Machine, runtime and time of the run.</summary>
public sealed record MachineInfo(string Os, int ProcessorCount, string DotNet, string Parity, DateTimeOffset StartedUtc, double Seconds);

/// <summary>One backend's run.</summary>
public sealed record BackendReport(
    string Name,
    string DType,
    RunStatus Status,
    string? Message,
    int StepsCompleted,
    double Seconds,
    IReadOnlyDictionary<string, string> Runtime,
    IReadOnlyList<ConventionMismatch> Mismatches,
    string Trace,
    bool Auxiliary);

/// <summary>Metrics of one tensor comparison.</summary>
/// <param name="MaxAbs">Greatest absolute difference.</param>
/// <param name="MaxRel">Greatest relative difference.</param>
/// <param name="Mismatched">Elements outside <c>atol + rtol * |expected|</c>.</param>
/// <param name="Count">Elements compared.</param>
/// <param name="Rmse">Root mean square difference.</param>
/// <param name="Cosine">Cosine similarity.</param>
/// <param name="Score">Observed / allowed error; above 1 fails.</param>
/// <param name="WorstIndex">Flat (row-major) index of the greatest absolute difference; -1 when none.</param>
/// <param name="Shape">Shape of the expected tensor, for turning <paramref name="WorstIndex"/> into a position; empty when unknown.</param>
/// <param name="Atol">Absolute tolerance the mismatches were counted under; null when unknown.</param>
/// <param name="Rtol">Relative tolerance the mismatches were counted under; null when unknown.</param>
public sealed record MetricsReport(double MaxAbs, double MaxRel, int Mismatched, int Count, double Rmse, double Cosine, double Score,
    int WorstIndex = -1, IReadOnlyList<int>? Shape = null, double? Atol = null, double? Rtol = null);

/// <summary>Where two traces first disagree.</summary>
public sealed record DivergenceReport(
    int Step,
    string Phase,
    string Kind,
    string Site,
    string Origin,
    MetricsReport Metrics,
    IReadOnlyList<string> UpstreamPassed,
    IReadOnlyList<string> UpstreamUnknown,
    IReadOnlyList<string> ExplainedBy)
{
    /// <summary>
    /// The one explanation of this divergence (<see cref="Explanations.Choose"/>), as every output prints it; null in a
    /// report built before the findings were known.
    /// </summary>
    public Explanation? Explanation { get; init; }
}

/// <summary>
/// Errors per step and tensor row, for the heatmap: <see cref="Rows"/> names (kind:site), <see cref="Steps"/>
/// the step of each column (long runs are bucketed to at most a few hundred columns by taking the maximum),
/// <see cref="Scores"/>[row][column] the observed/allowed error (null where not captured).
/// </summary>
public sealed record HeatmapReport(IReadOnlyList<string> Rows, IReadOnlyList<int> Steps, IReadOnlyList<IReadOnlyList<double?>> Scores)
{
    /// <summary>
    /// Per row, the columns whose checks are all kept out of the verdict (not identifiable: the loss does not depend on
    /// them); the report draws them in grey. Empty lists when every cell counts.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<int>> Excluded { get; init; } = [];

    /// <summary>
    /// Per row, the columns of <see cref="Excluded"/> whose shown check is excused as downstream of a ReLU kink flip
    /// rather than not identifiable; the report gives them their own colour. Empty lists when none.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<int>> KinkExcused { get; init; } = [];

    /// <summary>
    /// Per row, the columns whose worst counted check fails and is explained by a convention mismatch the backend declared:
    /// still a failure, drawn in its own colour so a reader tells it from an unexplained one. Empty lists when none.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<int>> Explained { get; init; } = [];
}

/// <summary>
/// One backend against the reference. The positional fields are those of the comparison that decides its verdict (see
/// <see cref="JudgedBy"/>): the step checks when any step could be replayed from the backend's own state, else the
/// free-running trajectory. <see cref="StepChecks"/> and <see cref="Trajectory"/> hold both sides.
/// </summary>
public sealed record ComparisonReport(
    string Backend,
    string Against,
    Verdict Verdict,
    string? Message,
    DivergenceReport? FirstDivergence,
    int StepsCompared,
    int TensorsCompared,
    int TensorsFailed,
    IReadOnlyList<string> NotIdentifiable,
    HeatmapReport Heatmap)
{
    /// <summary>Which comparison decided the verdict.</summary>
    public ComparisonMode JudgedBy { get; init; } = ComparisonMode.Trajectory;

    /// <summary>Why the backend was not step-checked, or what its step checks could not replay; null when nothing was left out.</summary>
    public string? StepCheckGap { get; init; }

    /// <summary>The step checks in numbers, or null when none ran.</summary>
    public StepCheckReport? StepChecks { get; init; }

    /// <summary>The free-running trajectory against the reference's (information when the step checks decide).</summary>
    public TrajectoryReport? Trajectory { get; init; }
}

/// <summary>The step checks of one backend: every captured step replayed by the reference from the backend's own state.</summary>
/// <param name="Verdict">Their verdict (it decides the backend's).</param>
/// <param name="StepsChecked">Train steps replayed and judged.</param>
/// <param name="TensorsChecked">Tensors judged.</param>
/// <param name="TensorsFailed">Counted failures.</param>
/// <param name="KinkExcused">Tensors over their noise only downstream of a ReLU kink flip within their own step: excused, counted here.</param>
/// <param name="Envelope">The float32 replays that set each tensor's noise, or null (float64 backends are judged by atol/rtol).</param>
public sealed record StepCheckReport(Verdict Verdict, int StepsChecked, int TensorsChecked, int TensorsFailed, int KinkExcused, string? Envelope);

/// <summary>
/// The free-running comparison of one backend's whole training with the reference's: where it first left the envelope,
/// and how far its loss, accuracy and weights drifted compared with the float32 envelope runs' own drift.
/// </summary>
/// <param name="Verdict">The trajectory's verdict (information while step checks decide).</param>
/// <param name="Message">A note (tensors inherited from ReLU kink flips), or the error.</param>
/// <param name="FirstDivergence">Where the trajectories first differ beyond the envelope, or null.</param>
/// <param name="StepsCompared">Train steps matched.</param>
/// <param name="TensorsCompared">Tensors compared.</param>
/// <param name="TensorsFailed">Counted failures.</param>
/// <param name="Drift">At the last compared step: loss, accuracies and the worst parameter, the backend's error against the envelope's.</param>
/// <param name="Heatmap">Scores per tensor and step.</param>
public sealed record TrajectoryReport(Verdict Verdict, string? Message, DivergenceReport? FirstDivergence, int StepsCompared, int TensorsCompared,
    int TensorsFailed, IReadOnlyList<DriftReport> Drift, HeatmapReport Heatmap)
{
    /// <summary>Per tensor kind, the backend's difference from the reference over the steps, beside the envelope runs' own.</summary>
    public IReadOnlyList<DifferenceReport> Differences { get; init; } = [];
}

/// <summary>
/// How far one tensor kind of a free-running backend is from the reference at each compared step (RMSE over each
/// tensor), as the worst and the median over the kind's identifiable tensors, beside the same two figures of the float32
/// envelope runs (the noise a float32 training shows). Runs longer than <see cref="ReportBuilder.MaxHeatmapColumns"/>
/// steps are bucketed, each point the maximum of its bucket.
/// </summary>
/// <param name="Kind">Tensor kind (camelCase name).</param>
/// <param name="Steps">The step of each point.</param>
/// <param name="Worst">Largest RMSE against the reference over the kind's tensors.</param>
/// <param name="Median">Median RMSE over the kind's tensors.</param>
/// <param name="EnvelopeWorst">Largest envelope RMSE over the kind's tensors so far; null without an envelope.</param>
/// <param name="EnvelopeMedian">Median envelope RMSE over the kind's tensors; null without an envelope.</param>
public sealed record DifferenceReport(string Kind, IReadOnlyList<int> Steps, IReadOnlyList<double> Worst, IReadOnlyList<double> Median,
    IReadOnlyList<double?> EnvelopeWorst, IReadOnlyList<double?> EnvelopeMedian);

/// <summary>How far one quantity drifted from the reference by the last compared step, against the envelope runs' drift.</summary>
/// <param name="Tensor">kind:site.</param>
/// <param name="Step">The step.</param>
/// <param name="Error">RMSE of the backend's value against the reference's.</param>
/// <param name="EnvelopeError">The largest RMSE an envelope run showed on it so far; null without an envelope.</param>
/// <param name="Ratio">Error / envelope error; null without an envelope.</param>
public sealed record DriftReport(string Tensor, int Step, double Error, double? EnvelopeError, double? Ratio);

/// <summary>One cell of the pairwise matrix: two trajectories compared by the rule the table uses.</summary>
public sealed record PairReport(string A, string B, Verdict Verdict, int? Step, string? Tensor);

/// <summary>A diagnosed cause of one backend's divergence, or a finding about the spec that backend ran (<see cref="Kind"/>).</summary>
public sealed record FindingReport(string Cause, string Backend, string Location, string Summary, IReadOnlyDictionary<string, object?> Evidence, string Hint)
{
    /// <summary><c>cause</c>: a cause of this backend's divergence; <c>spec</c>: a finding about the spec (a hazard), which explains no divergence.</summary>
    public Diagnostics.FindingKind Kind { get; init; } = Diagnostics.FindingKind.Cause;

    /// <summary>The setting of the convention mismatch the backend declared that accounts for this finding, or null.</summary>
    public string? DeclaredBy { get; init; }
}

/// <summary>A named curve of one backend, e.g. <c>loss</c>, <c>evalAccuracy</c>, <c>runningMean:bn[0]</c>.</summary>
public sealed record SeriesReport(string Backend, string Name, IReadOnlyList<int> Steps, IReadOnlyList<double> Values);
