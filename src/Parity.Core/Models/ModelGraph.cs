using Parity.Specs;

namespace Parity.Models;

/// <summary>A call site resolved against the model: position, instance, widths in and out.</summary>
public sealed record CallSite(int Index, string Id, LayerSpec Layer, int InWidth, int OutWidth)
{
    /// <summary>True for batchnorm calls (they trace batch statistics).</summary>
    public bool IsBatchNorm => Layer is BatchNormSpec;

    /// <summary>True for dropout calls (they trace the mask they applied).</summary>
    public bool IsDropout => Layer is DropoutSpec;
}

/// <summary>A trainable parameter: <c>instance.local</c> name, shape (canonical layout) and identifiability.</summary>
/// <param name="Name">Full name, e.g. <c>l1.weight</c>.</param>
/// <param name="Instance">The layer instance.</param>
/// <param name="Local">The name within the instance: weight, bias, gamma, beta.</param>
/// <param name="Shape">Canonical shape (linear weight [out, in]).</param>
/// <param name="Identifiable">
/// False when the loss does not depend on the parameter, so its gradient is rounding noise: a linear
/// bias whose every call is directly followed by batchnorm (the batch mean subtraction removes it).
/// Such parameters are kept out of verdicts; everything computed from them must still agree.
/// </param>
public sealed record ParameterInfo(string Name, string Instance, string Local, int[] Shape, bool Identifiable);

/// <summary>
/// The resolved model: call sites with widths, parameters in canonical order, running statistics.
/// Built once by <see cref="SpecLoader"/> after validation; backends iterate it instead of re-deriving.
/// </summary>
public sealed class ModelGraph
{
    /// <summary>Resolves a validated model spec.</summary>
    public ModelGraph(ModelSpec model)
    {
        var sites = new List<CallSite>();
        int width = model.Inputs;
        foreach (var (call, index) in model.Calls.Select((c, i) => (c, i)))
        {
            var layer = model.Layer(call.Layer);
            int outWidth = layer is LinearSpec lin ? lin.Out : width;
            sites.Add(new CallSite(index, call.Id, layer, width, outWidth));
            width = outWidth;
        }
        Calls = sites;
        OutputWidth = width;

        var parameters = new List<ParameterInfo>();
        foreach (var layer in model.Layers)
        {
            foreach (var (local, shape) in layer.ParameterShapes)
            {
                bool identifiable = !(layer is LinearSpec && local == "bias" && EveryCallFeedsBatchNorm(layer.Name));
                parameters.Add(new ParameterInfo($"{layer.Name}.{local}", layer.Name, local, shape, identifiable));
            }
        }
        Parameters = parameters;
        BatchNorms = model.Layers.OfType<BatchNormSpec>().ToList();
        Shared = model.SharedLayers.Select(l => l.Name).ToHashSet();
    }

    /// <summary>Call sites in execution order.</summary>
    public IReadOnlyList<CallSite> Calls { get; }

    /// <summary>Width of the last call's output: the number of classes.</summary>
    public int OutputWidth { get; }

    /// <summary>Trainable parameters in canonical order (layer order, then weight, bias / gamma, beta).</summary>
    public IReadOnlyList<ParameterInfo> Parameters { get; }

    /// <summary>Batchnorm instances, each with a running mean and a running variance.</summary>
    public IReadOnlyList<BatchNormSpec> BatchNorms { get; }

    /// <summary>Names of instances called at two or more call sites.</summary>
    public IReadOnlySet<string> Shared { get; }

    /// <summary>The parameter named <paramref name="name"/>.</summary>
    public ParameterInfo Parameter(string name) => Parameters.First(p => p.Name == name);

    private bool EveryCallFeedsBatchNorm(string instance)
    {
        bool any = false;
        for (int i = 0; i < Calls.Count; i++)
        {
            if (Calls[i].Layer.Name != instance) continue;
            any = true;
            if (i + 1 >= Calls.Count || Calls[i + 1].Layer is not BatchNormSpec) return false;
        }
        return any;
    }
}
