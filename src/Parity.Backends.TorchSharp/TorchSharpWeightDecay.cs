using Parity.Models;
using Parity.Specs;
using TorchSharp;
using TorchSharp.Modules;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Parity.Backends.TorchSharp;

/// <summary>
/// The spec's weight decay in TorchSharp, each form exactly as PyTorch computes it. Coupled decay on every parameter is
/// torch.optim's own <c>weight_decay=</c> (SGD and Adam add it to the gradient inside step(): grad.add(param, alpha: wd));
/// on the linear weights alone it is the same op applied to those gradients around step(), as a parameter group with its
/// own weight_decay would. Decoupled decay is PyTorch AdamW's own op, p.mul_(1 - lr wd), before step(), for any optimizer
/// (with <c>multiplyByLearningRate</c> false, p.mul_(1 - wd), TF1 contrib AdamW's shrink). The loss term is added to the
/// loss before backward(), so the traced loss and gradients include it, as Keras computes them.
/// </summary>
internal sealed class TorchSharpWeightDecay
{
    private readonly WeightDecaySpec _spec;
    private readonly List<Parameter> _decayed;

    private TorchSharpWeightDecay(WeightDecaySpec spec, List<Parameter> decayed)
    {
        _spec = spec;
        _decayed = decayed;
    }

    /// <summary>The decay of <paramref name="optimizer"/> over the session's parameters, or null when it has none.</summary>
    public static TorchSharpWeightDecay? For(OptimizerSpec optimizer, ModelGraph graph, IReadOnlyDictionary<string, Parameter> parameters) =>
        optimizer.WeightDecay is { } spec
            ? new TorchSharpWeightDecay(spec, graph.Parameters.Where(spec.Applies).Select(p => parameters[p.Name]).ToList())
            : null;

    /// <summary>The <c>weight_decay=</c> to hand torch.optim: the rate for coupled decay on every parameter, else 0.</summary>
    public double OptimizerWeightDecay => _spec is { Form: WeightDecayForm.Coupled, Parameters: DecayedParameters.All } ? _spec.Rate : 0;

    /// <summary>The loss with the L2 term, coefficient * sum(w^2) per decayed parameter, added in parameter order.</summary>
    public TorchTensor WithLossTerm(TorchTensor loss)
    {
        if (_spec.Form != WeightDecayForm.L2Loss) return loss;
        foreach (var w in _decayed) loss = loss + w.pow(2).sum() * _spec.Rate;
        return loss;
    }

    /// <summary>
    /// Runs <paramref name="step"/> (optimizer.step()) with the decay torch.optim is not already applying;
    /// <paramref name="learningRate"/> is this update's rate (the schedule's).
    /// </summary>
    public void AroundStep(double learningRate, Action step)
    {
        if (_spec.Form == WeightDecayForm.Decoupled)
        {
            using (torch.no_grad())
                foreach (var p in _decayed) p.mul_(1 - _spec.DecoupledFactor(learningRate));
            step();
            return;
        }
        if (_spec.Form != WeightDecayForm.Coupled || OptimizerWeightDecay != 0)
        {
            step();
            return;
        }
        // Coupled on the weights only: the optimizer sees grad + wd p; the trace keeps p.grad, the raw gradient, as
        // torch.optim leaves it (its own weight_decay adds into a new tensor).
        var raw = _decayed.Select(p => p.grad!.clone()).ToList();
        using (torch.no_grad())
            foreach (var p in _decayed) p.grad!.add_(p, alpha: _spec.Rate);
        step();
        using (torch.no_grad())
            for (int i = 0; i < _decayed.Count; i++) _decayed[i].grad!.copy_(raw[i]);
    }
}
