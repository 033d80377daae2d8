using System.Numerics;
using Parity.Models;
using Parity.Specs;

namespace Parity.Backends.Reference;

/// <summary>
/// The three forms of weight decay (<see cref="WeightDecayForm"/>) on a <see cref="Network{T}"/>, around the optimizer's
/// update so that every optimizer gets them the same way: the loss term after the backward pass, the coupled gradient
/// term and the decoupled shrink just before the update, each over the parameters the spec names.
/// </summary>
internal sealed class WeightDecay<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly WeightDecaySpec _spec;
    private readonly Network<T> _network;
    private readonly List<ParameterInfo> _decayed;

    private WeightDecay(WeightDecaySpec spec, Network<T> network)
    {
        _spec = spec;
        _network = network;
        _decayed = network.Graph.Parameters.Where(spec.Applies).ToList();
    }

    /// <summary>The decay of <paramref name="optimizer"/> on <paramref name="network"/>, or null when it has none.</summary>
    public static WeightDecay<T>? For(OptimizerSpec optimizer, Network<T> network) =>
        optimizer.WeightDecay is { } spec ? new WeightDecay<T>(spec, network) : null;

    /// <summary>
    /// <see cref="WeightDecayForm.L2Loss"/>: adds coefficient * sum(w^2) over the decayed parameters to the pass's loss
    /// and 2 coefficient w to their gradients (the derivative of that term), after the backward pass, so the traced
    /// loss and gradients include the term. Each parameter's sum of squares is multiplied by the coefficient, then added.
    /// </summary>
    public void AddLossTerm(Pass<T> pass)
    {
        if (_spec.Form != WeightDecayForm.L2Loss) return;
        T coefficient = T.CreateTruncating(_spec.Rate), gradientRate = T.CreateTruncating(_spec.GradientRate);
        foreach (var p in _decayed)
        {
            var w = _network.Parameters[p.Name];
            var g = _network.Gradients[p.Name];
            T squares = T.Zero;
            for (int i = 0; i < w.Length; i++)
            {
                squares += w[i] * w[i];
                g[i] += gradientRate * w[i];
            }
            pass.Loss += coefficient * squares;
        }
    }

    /// <summary>
    /// Runs <paramref name="update"/> (the optimizer's step over every parameter) after the decoupled shrink: each decayed
    /// parameter p -= k p from its pre-update value (k = lr rate, or rate when not multiplied by the learning rate). The
    /// other forms change the gradients instead (<see cref="AddLossTerm"/>, <see cref="WithGradientTerm"/>).
    /// </summary>
    public void AroundUpdate(double learningRate, Action update)
    {
        ArgumentNullException.ThrowIfNull(update);
        if (_spec.Form == WeightDecayForm.Decoupled)
        {
            T k = T.CreateTruncating(_spec.DecoupledFactor(learningRate));
            foreach (var p in _decayed)
            {
                var w = _network.Parameters[p.Name];
                for (int i = 0; i < w.Length; i++) w[i] -= k * w[i];
            }
        }
        update();
    }

    /// <summary>
    /// The gradients the update reads under <see cref="WeightDecayForm.Coupled"/> decay: g + rate p for each decayed
    /// parameter, in new arrays, so the network's gradient stays the raw g a trace records (PyTorch's p.grad); the
    /// <paramref name="gradients"/> as given under the other forms. Called after clipping: the term is not clipped.
    /// </summary>
    public IReadOnlyDictionary<string, T[]> WithGradientTerm(IReadOnlyDictionary<string, T[]> gradients)
    {
        ArgumentNullException.ThrowIfNull(gradients);
        if (_spec.Form != WeightDecayForm.Coupled) return gradients;
        var result = new Dictionary<string, T[]>(gradients);
        T rate = T.CreateTruncating(_spec.Rate);
        foreach (var p in _decayed)
        {
            var w = _network.Parameters[p.Name];
            var g = (T[])gradients[p.Name].Clone();
            for (int i = 0; i < w.Length; i++) g[i] += rate * w[i];
            result[p.Name] = g;
        }
        return result;
    }
}
