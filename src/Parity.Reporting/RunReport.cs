using Parity.Backends;
using Parity.Comparison;

namespace Parity.Reporting;

/// <summary>
/// report.json: the machine-readable truth of a run (docs/report.md, docs/report.schema.json). Every other
/// format (HTML, JUnit, Markdown) is rendered from this record alone.
/// </summary>
public sealed record RunReport
{
    /// <summary>Always <c>parity-report</c>.</summary>
    public string Format { get; init; } = "parity-report";

    /// <summary>Schema version; bumped on any incompatible change.</summary>
    public int Version { get; init; } = 1;

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
    public string Verdict { get; init; } = "agree";
}

/// <summary>The scenario as run.</summary>
public sealed record ScenarioInfo(string Name, string Description, string SpecHash, string? SpecPath, string DType, int Steps, int StepsPerEpoch, int TrainSamples, int EvalSamples, string DataOrigin, IReadOnlyList<string> SharedInstances, IReadOnlyList<string> NotIdentifiable);

/// <summary>Machine, runtime and time of the run.</summary>
public sealed record MachineInfo(string Os, int ProcessorCount, string DotNet, string Parity, DateTimeOffset StartedUtc, double Seconds);

/// <summary>One backend's run.</summary>
public sealed record BackendReport(
    string Name,
    string DType,
    string Status,
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
    IReadOnlyList<string> ExplainedBy);

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
}

/// <summary>One backend against the reference.</summary>
public sealed record ComparisonReport(
    string Backend,
    string Against,
    string Verdict,
    string? Message,
    DivergenceReport? FirstDivergence,
    int StepsCompared,
    int TensorsCompared,
    int TensorsFailed,
    IReadOnlyList<string> NotIdentifiable,
    HeatmapReport Heatmap);

/// <summary>One cell of the pairwise matrix.</summary>
public sealed record PairReport(string A, string B, string Verdict, int? Step, string? Tensor);

/// <summary>A diagnosed cause.</summary>
public sealed record FindingReport(string Cause, string Backend, string Location, string Summary, IReadOnlyDictionary<string, object?> Evidence, string Hint);

/// <summary>A named curve of one backend, e.g. <c>loss</c>, <c>evalAccuracy</c>, <c>runningMean:bn[0]</c>.</summary>
public sealed record SeriesReport(string Backend, string Name, IReadOnlyList<int> Steps, IReadOnlyList<double> Values);
