using Parity.Data;
using Parity.Models;
using Parity.Specs;
using Parity.Tracing;

namespace Parity.Planning;

/// <summary>
/// A resolved scenario: the spec, its model graph, the canonical initial state, the data in the order
/// every backend sees it, and the schedule. Immutable; built by <see cref="Planner"/>.
/// </summary>
public sealed class Plan
{
    internal Plan(ScenarioSpec spec, ModelGraph graph, StepRecord initialState, DataSet train, DataSet eval, int stepsPerEpoch, int totalSteps, int evalBatchSize)
    {
        EvalBatchSize = evalBatchSize;
        Spec = spec;
        Graph = graph;
        InitialState = initialState;
        Train = train;
        Eval = eval;
        StepsPerEpoch = stepsPerEpoch;
        TotalSteps = totalSteps;
    }

    /// <summary>
    /// The same data, initial state and schedule under another spec of the same model shape (a spec patched with a
    /// backend's declared conventions, for replaying that backend's steps).
    /// </summary>
    public Plan WithSpec(ScenarioSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new Plan(spec, new ModelGraph(spec.Model), InitialState, Train, Eval, StepsPerEpoch, TotalSteps, EvalBatchSize) { Filter = Filter };
    }

    /// <summary>The same plan capturing only what <paramref name="filter"/> keeps (null: what the spec says).</summary>
    public Plan WithFilter(CaptureFilter? filter) =>
        new(Spec, Graph, InitialState, Train, Eval, StepsPerEpoch, TotalSteps, EvalBatchSize) { Filter = filter, Memory = Memory };

    /// <summary>The command line's narrowing of the capture (kinds, sites, step range); null when none.</summary>
    public CaptureFilter? Filter { get; private init; }

    /// <summary>The run's estimated peak memory, checked against the budget when the plan was built.</summary>
    public MemoryEstimate? Memory { get; init; }

    /// <summary>The validated spec.</summary>
    public ScenarioSpec Spec { get; }

    /// <summary>Call sites, parameters, running statistics.</summary>
    public ModelGraph Graph { get; }

    /// <summary>
    /// Step 0: every parameter (<see cref="TensorKind.Parameter"/>, site = parameter name, canonical layout)
    /// and every batchnorm instance's running statistics (site = instance name). Values are float32-exact
    /// so a float32 and a float64 backend start from the same numbers. Under <c>init: framework</c> these
    /// are still provided (for shape and for backends without their own initializers).
    /// </summary>
    public StepRecord InitialState { get; }

    /// <summary>Training samples.</summary>
    public DataSet Train { get; }

    /// <summary>Evaluation samples, evaluated in chunks of <see cref="EvalBatchSize"/>.</summary>
    public DataSet Eval { get; }

    /// <summary>Samples per evaluation call: <c>evaluation.batchSize</c>, else the training batch size.</summary>
    public int EvalBatchSize { get; }

    /// <summary>Full batches per epoch (a last partial batch is dropped, so every step has the same size).</summary>
    public int StepsPerEpoch { get; }

    /// <summary>Number of optimizer steps.</summary>
    public int TotalSteps { get; }

    /// <summary>
    /// The batch of step <paramref name="step"/> (1-based): epoch e uses permutation e of the shuffle seed; with the
    /// harness's mask of every dropout call (<see cref="Models.Dropout.Mask"/>).
    /// </summary>
    public Batch BatchFor(int step)
    {
        if (step < 1 || step > TotalSteps) throw new ArgumentOutOfRangeException(nameof(step), $"step {step} outside 1..{TotalSteps}");
        int epoch = (step - 1) / StepsPerEpoch;
        int within = (step - 1) % StepsPerEpoch;
        int b = Spec.Data.BatchSize;
        return Models.Dropout.WithMasks(Train.Gather(OrderOf(epoch).AsSpan(within * b, b)), Graph, Spec.Seed, step);
    }

    // The sample order of the epoch last asked for, kept: every step of an epoch slices the same order, so it is drawn
    // once an epoch instead of once a step. Swapped as one reference, so threads sharing the plan read a whole pair.
    private sealed record EpochOrder(int Epoch, int[] Order);

    private EpochOrder? _order;

    /// <summary>The order of the training samples in epoch <paramref name="epoch"/> (0-based): permutation e of the shuffle seed.</summary>
    private int[] OrderOf(int epoch)
    {
        if (_order is { } kept && kept.Epoch == epoch) return kept.Order;
        int[] order = Spec.Data.Shuffle
            ? Randomness.ParityRandom.Derive(Spec.Data.ShuffleSeed, $"shuffle/epoch{epoch}").Permutation(Train.Count)
            : Enumerable.Range(0, Train.Count).ToArray();
        _order = new EpochOrder(epoch, order);
        return order;
    }

    /// <summary>The whole eval set as one batch (for checks that evaluate it at once; runs use <see cref="EvalBatches"/>).</summary>
    public Batch EvalBatch() => Eval.All();

    /// <summary>
    /// The eval set in order, in chunks of <see cref="EvalBatchSize"/> samples (the last may be smaller): what every
    /// backend is asked to evaluate, one call per chunk, so all see the same batches.
    /// </summary>
    public IEnumerable<Batch> EvalBatches()
    {
        for (int start = 0; start < Eval.Count; start += EvalBatchSize)
        {
            int count = Math.Min(EvalBatchSize, Eval.Count - start);
            yield return Eval.Gather(Enumerable.Range(start, count).ToArray());
        }
    }

    /// <summary>The steps captured in full: the spec's selection, or the automatic policy for this many steps.</summary>
    public CaptureSteps CaptureSteps => Spec.Capture.Steps ?? CaptureSteps.Auto(TotalSteps);

    /// <summary>True when step <paramref name="step"/> is captured in full (and so step-checked).</summary>
    public bool IsCaptured(int step) => CaptureSteps.Includes(step, TotalSteps) && (Filter?.IncludesStep(step) ?? true);

    /// <summary>True when an evaluation follows step <paramref name="step"/>.</summary>
    public bool IsEvalStep(int step) =>
        step == TotalSteps || (Spec.Schedule.EvalEvery > 0 && step % Spec.Schedule.EvalEvery == 0);

    /// <summary>
    /// What to ask a backend for at step <paramref name="step"/>: the spec's kinds on a captured step; the state before a
    /// captured step (the step check of step s replays it from the state after s - 1); the scalars otherwise.
    /// </summary>
    public Backends.CaptureRequest CaptureFor(int step)
    {
        if (IsCaptured(step)) return new Backends.CaptureRequest(CapturedKinds) { Filter = Filter };
        if (step < TotalSteps && IsCaptured(step + 1))
            return new Backends.CaptureRequest(new HashSet<TensorKind>(TensorKinds.AlwaysRecorded.Concat(TensorKinds.State.Where(CapturedKinds.Contains))));
        return Backends.CaptureRequest.ScalarsOnly;
    }

    /// <summary>
    /// The kinds captured on a captured step: the spec's, narrowed by <see cref="Filter"/> to its kinds and the state kinds
    /// (kept so every captured step can still be replayed from the backend's own state).
    /// </summary>
    public IReadOnlySet<TensorKind> CapturedKinds => Filter?.Kinds is { } kinds
        ? new HashSet<TensorKind>(Spec.Capture.Kinds.Where(k => kinds.Contains(k) || k.IsState()))
        : Spec.Capture.Kinds;
}
