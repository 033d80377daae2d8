using Parity.Backends;
using Parity.Backends.Reference;
using Parity.Data;
using Parity.Planning;
using Parity.Randomness;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Harness;

/// <summary>
/// Which traces are the float32 noise envelope of which backend (docs/tolerances.md). A float32 backend is judged
/// against the float64 reference relative to how far independent float32 runs of the same math stray from it:
/// the float32 reference <c>reference-f32</c>, and <c>reference-f32</c> fed every batch with its rows in a seeded
/// permuted order (<see cref="PermutedBatchBackend"/>), which reorders every sum over the batch (batch statistics,
/// weight gradients, the mean loss) and nothing else. Two trajectories give a sturdier bound than one, whose
/// errors on a scalar such as the loss can cancel by luck; the float32 reference, which cannot be its own
/// envelope, is judged against the permuted one alone.
/// </summary>
public static class NoiseEnvelope
{
    /// <summary>The float32 reference.</summary>
    public const string Float32Reference = ReferenceBackend.Float32Name;

    /// <summary>The float32 reference on batches with permuted rows.</summary>
    public const string PermutedFloat32Reference = "reference-f32-permuted";

    /// <summary>The names of the traces that are <paramref name="backend"/>'s envelope.</summary>
    public static IReadOnlyList<string> EnvelopesOf(string backend) =>
        backend == Float32Reference ? [PermutedFloat32Reference] : [Float32Reference, PermutedFloat32Reference];

    /// <summary>Creates the envelope backend named <paramref name="name"/>.</summary>
    public static IBackend Create(string name) => name switch
    {
        Float32Reference => ReferenceBackend.Float32(),
        PermutedFloat32Reference => new PermutedBatchBackend(ReferenceBackend.Float32(), PermutedFloat32Reference),
        _ => throw new ArgumentException($"'{name}' is not an envelope backend"),
    };
}

/// <summary>
/// Runs another backend with the rows of every batch (training and evaluation) in a seeded permuted order and puts
/// per-sample tensors (forward outputs, output gradients) back in the original row order. The mathematics is unchanged
/// (batchnorm, the mean loss and every gradient are sums over the batch); only the order of those sums, and
/// so their float rounding, differs. Backends with another <paramref name="draw"/> permute by another seed.
/// </summary>
public sealed class PermutedBatchBackend(IBackend inner, string name, int draw = 0) : IBackend
{
    /// <inheritdoc />
    public string Name => name;

    /// <inheritdoc />
    public BackendDescription Describe() => inner.Describe() with { Name = name };

    /// <inheritdoc />
    public IBackendSession Open(Plan plan, BackendOptions options) => new Session(inner.Open(plan, options), plan.Spec.Seed, draw, ownsInner: true);

    /// <summary>
    /// <paramref name="inner"/> (already open on a plan of seed <paramref name="seed"/>) fed batches permuted as draw
    /// <paramref name="draw"/> permutes them. The result does not own <paramref name="inner"/>: many draws share one session.
    /// </summary>
    public static IStateLoadingSession Draw(IStateLoadingSession inner, ulong seed, int draw) => new Session(inner, seed, draw, ownsInner: false);

    private sealed class Session(IBackendSession inner, ulong seed, int draw, bool ownsInner) : IStateLoadingSession
    {
        public IReadOnlyList<ConventionMismatch> Mismatches => inner.Mismatches;

        public void LoadState(StepRecord state) =>
            (inner as IStateLoadingSession ?? throw new BackendException("the permuted envelope's backend cannot load a state")).LoadState(state);

        public IReadOnlyDictionary<string, string> RuntimeInfo => inner.RuntimeInfo;

        public StepRecord ReadState(int step) => inner.ReadState(step);

        public StepRecord Evaluate(int step, Batch data, CaptureRequest capture)
        {
            int[] order = Order($"envelope/eval{step}", data.Size);
            return Restore(inner.Evaluate(step, Permute(data, order), capture), order);
        }

        public StepRecord Step(int step, Batch batch, CaptureRequest capture) => Step(step, batch, capture, null);

        public StepRecord Step(int step, Batch batch, CaptureRequest capture, StepRecord? followSigns)
        {
            int[] order = Order($"envelope/step{step}", batch.Size);
            StepRecord record;
            if (followSigns is null) record = inner.Step(step, Permute(batch, order), capture);
            else
            {
                // The signs and dropout masks to follow are per sample: put their rows in the permuted batch's order too.
                var permutedSigns = new StepRecord(followSigns.Step, followSigns.Phase);
                foreach (var e in followSigns.Entries.Where(e => e.Key.Kind is TensorKind.Forward or TensorKind.DropoutMask))
                    permutedSigns.Add(e.Key.Kind, e.Key.Site, PermuteRows(e.Value, order));
                var loading = inner as IStateLoadingSession ?? throw new BackendException("the permuted envelope's backend cannot replay a step");
                record = loading.Step(step, Permute(batch, order), capture, permutedSigns);
            }
            return Restore(record, order);
        }

        public void Dispose()
        {
            if (ownsInner) inner.Dispose();
        }

        private int[] Order(string label, int rows) =>
            ParityRandom.Derive(seed, draw == 0 ? label : $"{label}/draw{draw}").Permutation(rows);

        // The record with its per-sample tensors back in the original row order.
        private static StepRecord Restore(StepRecord record, int[] order)
        {
            var restored = new StepRecord(record.Step, record.Phase);
            foreach (var e in record.Entries)
            {
                bool perSample = e.Key.Kind is TensorKind.Forward or TensorKind.OutputGradient or TensorKind.DropoutMask;
                restored.Add(e.Key.Kind, e.Key.Site, perSample ? Unpermute(e.Value, order) : e.Value);
            }
            return restored;
        }

        // Row r of the permuted batch is row order[r] of the original.
        private static Batch Permute(Batch batch, int[] order)
        {
            int w = batch.Features;
            var x = new double[batch.Inputs.Length];
            var y = new int[batch.Size];
            for (int r = 0; r < order.Length; r++)
            {
                Array.Copy(batch.Inputs.Data, order[r] * w, x, r * w, w);
                y[r] = batch.Labels[order[r]];
            }
            // A sample keeps its dropout mask row (the permuted step computes the same function) and its targets row.
            return new Batch(new Tensor([batch.Size, w], x, batch.Inputs.DType), y)
            {
                Targets = batch.Targets is { } t ? PermuteRows(t, order) : null,
                DropoutMasks = batch.DropoutMasks.ToDictionary(m => m.Key, m => PermuteRows(m.Value, order)),
            };
        }

        // Row r of the result is row order[r] of the tensor (the batch's permutation applied to per-sample rows).
        private static Tensor PermuteRows(Tensor t, int[] order)
        {
            int w = t.Length / order.Length;
            var data = new double[t.Length];
            for (int r = 0; r < order.Length; r++) Array.Copy(t.Data, order[r] * w, data, r * w, w);
            return new Tensor(t.Shape, data, t.DType);
        }

        private static Tensor Unpermute(Tensor t, int[] order)
        {
            int w = t.Length / order.Length;
            var data = new double[t.Length];
            for (int r = 0; r < order.Length; r++) Array.Copy(t.Data, r * w, data, order[r] * w, w);
            return new Tensor(t.Shape, data, t.DType);
        }
    }
}
