using System.Text.RegularExpressions;

namespace Parity.Specs;

/// <summary>
/// What an unknown key or value of a spec most likely is, so its error says more than "unknown": a feature that
/// PyTorch or Keras users would write but that Parity does not implement ("not supported", with the docs/spec.md
/// section that lists what is supported), another framework's name for a setting Parity has, or a misspelling of
/// one of the object's own keys ("did you mean", by edit distance).
/// </summary>
internal static partial class SpecVocabulary
{
    /// <summary>A name Parity does not have, in the objects of one scope.</summary>
    /// <param name="Scope">Which objects: <c>layer</c>, <c>optimizer</c>, <c>loss</c>, <c>source</c>, <c>schedule</c> or <c>data</c>.</param>
    /// <param name="OfType">True: a value of the object's <c>type</c>; false: a key of the object.</param>
    /// <param name="Names">The names, as users write them (matched ignoring case, '_' and '-').</param>
    /// <param name="Note">For a feature: what it is and why it is absent; for another framework's name: whose name it is.</param>
    /// <param name="Anchor">The docs/spec.md section (its anchor) that says what a spec can hold instead.</param>
    /// <param name="Instead">The spec's own name for the same setting; null for a feature Parity does not support.</param>
    internal sealed record ForeignName(string Scope, bool OfType, string[] Names, string Note, string Anchor, string? Instead = null);

    /// <summary>Every name this class recognises; a test checks each anchor against docs/spec.md.</summary>
    internal static readonly IReadOnlyList<ForeignName> ForeignNames =
    [
        // Layer types.
        new("layer", true, ["conv", "conv1d", "conv2d", "conv3d", "convolution", "conv2d_transpose", "separable_conv2d", "depthwise_conv2d"],
            "a convolution: a spec describes an MLP of the layer types listed there", "layer-objects"),
        new("layer", true, ["maxpool", "max_pool", "maxpool2d", "max_pooling2d", "avgpool", "avg_pool", "avgpool2d", "average_pooling2d", "pooling", "global_average_pooling2d", "adaptive_avg_pool2d"],
            "pooling: a spec describes an MLP of the layer types listed there", "layer-objects"),
        new("layer", true, ["rnn", "simple_rnn", "lstm", "gru"], "a recurrent layer: a spec describes an MLP of the layer types listed there", "layer-objects"),
        new("layer", true, ["embedding"], "an embedding: a spec describes an MLP of the layer types listed there", "layer-objects"),
        new("layer", true, ["attention", "multihead_attention", "multi_head_attention", "transformer"], "attention: a spec describes an MLP of the layer types listed there", "layer-objects"),
        new("layer", true, ["flatten", "reshape"], "reshaping: every sample is already a flat vector of model.inputs features", "layer-objects"),
        new("layer", true, ["softmax", "log_softmax"], "a softmax layer: the loss takes the last call's logits and applies softmax itself", "loss"),
        new("layer", true, ["prelu", "selu", "celu", "softplus", "softsign", "mish", "hardswish", "hard_swish", "hardtanh", "relu6", "hard_sigmoid", "logsigmoid", "glu"],
            "an activation Parity does not implement", "activations"),
        new("layer", true, ["groupnorm", "group_norm", "instancenorm", "instance_norm", "rmsnorm", "rms_norm", "batchnorm2d", "batch_norm2d"],
            "a normalization other than batchnorm and layernorm", "layer-objects"),
        new("layer", true, ["alpha_dropout", "spatial_dropout", "spatial_dropout1d", "gaussian_dropout", "gaussian_noise"], "a dropout other than inverted dropout", "dropout"),
        new("layer", true, ["dense", "fully_connected", "fc"], "Keras's and TF's name", "layer-objects", "linear"),
        new("layer", true, ["batch_normalization", "batchnorm1d"], "the Keras and PyTorch class name", "layer-objects", "batchnorm"),
        new("layer", true, ["layer_normalization"], "the Keras class name", "layer-objects", "layernorm"),
        new("layer", true, ["swish"], "Keras's other name", "activations", "silu"),

        // Layer keys.
        new("layer", false, ["activation"], "an activation inside a layer (Keras Dense(activation=...)): add an activation layer and call it after this one", "activations"),
        new("layer", false, ["kernel_regularizer", "bias_regularizer", "activity_regularizer"], "a per-layer regularizer: weight decay is set on the optimizer", "weight-decay"),
        new("layer", false, ["kernel_constraint", "bias_constraint"], "a weight constraint", "layer-objects"),
        new("layer", false, ["track_running_stats"], "batchnorm without running statistics: every batchnorm keeps them", "batchnorm"),
        new("layer", false, ["units", "out_features", "output_dim"], "the Keras or PyTorch argument", "layer-objects", "out"),
        new("layer", false, ["in_features", "input_dim"], "the Keras or PyTorch argument", "layer-objects", "in"),
        new("layer", false, ["use_bias"], "the Keras argument", "layer-objects", "bias"),
        new("layer", false, ["num_features"], "the PyTorch argument", "layer-objects", "features"),
        new("layer", false, ["kernel_initializer", "bias_initializer", "initializer"], "the Keras argument", "initializers", "init"),
        new("layer", false, ["negative_slope", "alpha_leaky"], "the PyTorch argument", "activations", "slope"),
        new("layer", false, ["rate", "drop_prob"], "the Keras argument, the drop probability", "dropout", "p"),
        new("layer", false, ["epsilon"], "the Keras argument", "layer-objects", "eps"),
        new("layer", false, ["center", "scale", "elementwise_affine"], "the Keras or PyTorch argument", "layer-objects", "affine"),
        new("layer", false, ["approximate"], "the PyTorch and Keras argument", "activations", "approximation"),

        // Optimizer types and keys.
        new("optimizer", true, ["adadelta", "adamax", "nadam", "radam", "lamb", "lars", "lbfgs", "ftrl", "adafactor", "lion", "sparse_adam", "asgd", "rprop", "novograd"],
            "an optimizer Parity does not implement", "optimizer"),
        new("optimizer", true, ["adamw"], "adam with a decoupled weightDecay", "weight-decay", "adam"),
        new("optimizer", true, ["momentum", "gradient_descent"], "a TF1 optimizer name", "optimizer", "sgd"),
        new("optimizer", false, ["amsgrad"], "AMSGrad (Adam with the running maximum of v)", "adam"),
        new("optimizer", false, ["dampening"], "SGD momentum dampening", "sgd"),
        new("optimizer", false, ["maximize"], "gradient ascent", "optimizer"),
        new("optimizer", false, ["learning_rate"], "the Keras argument", "optimizer", "lr"),
        new("optimizer", false, ["epsilon"], "the Keras argument", "optimizer", "eps"),
        new("optimizer", false, ["alpha"], "PyTorch RMSprop's argument", "optimizer", "rho"),
        new("optimizer", false, ["betas"], "PyTorch's pair: give beta1 and beta2", "optimizer", "beta1"),
        new("optimizer", false, ["initial_accumulator_value"], "the PyTorch and Keras argument", "optimizer", "initialAccumulator"),
        new("optimizer", false, ["clipnorm", "global_clipnorm", "clipvalue", "max_norm", "max_grad_norm"], "the Keras or PyTorch setting", "gradient-clipping", "clip"),
        new("optimizer", false, ["decay", "lr_scheduler", "scheduler", "lr_schedule"], "a learning-rate schedule", "learning-rate-schedules", "schedule"),

        // Losses.
        new("loss", true, ["hinge", "squared_hinge", "huber", "smooth_l1", "l1", "mae", "mean_absolute_error", "kl_div", "kld", "kl_divergence", "poisson",
            "cosine_similarity", "focal", "ctc", "nll", "nll_loss", "margin_ranking", "triplet"], "a loss Parity does not implement", "loss"),
        new("loss", true, ["binary_crossentropy", "bce"], "binary cross-entropy of probabilities: bce_with_logits takes the logits (Keras from_logits=True)", "loss"),
        new("loss", true, ["cross_entropy", "crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy", "cross_entropy_loss"],
            "the PyTorch or Keras name (on logits)", "loss", "softmax_cross_entropy"),
        new("loss", true, ["mean_squared_error", "mse_loss"], "the Keras or PyTorch name", "loss", "mse"),
        new("loss", true, ["bce_with_logits_loss", "sigmoid_cross_entropy"], "the PyTorch or TF name", "loss", "bce_with_logits"),

        // Data sources and data keys.
        new("source", true, ["parquet", "hdf5", "h5", "tfrecord", "arrow", "json", "image_folder", "images", "mnist", "cifar10", "cifar100"],
            "a data source Parity cannot read", "sources"),
        new("source", true, ["fashion_mnist"], "read as idx files named \"fashion-mnist:FILE\"", "sources", "idx"),
        new("data", false, ["augmentation", "transform", "transforms"], "data augmentation: every backend trains on the same bytes", "data-and-batching"),
        new("data", false, ["validation", "val", "test"], "the evaluation source", "data-and-batching", "eval"),

        // Learning-rate schedules.
        new("schedule", true, ["linear", "polynomial", "one_cycle", "onecycle", "cyclic", "warmup", "linear_warmup", "reduce_on_plateau", "cosine_warm_restarts",
            "multistep", "multi_step", "lambda"], "a schedule Parity does not implement", "learning-rate-schedules"),
        new("schedule", true, ["step_lr"], "the PyTorch name", "learning-rate-schedules", "step"),
        new("schedule", true, ["exponential_decay", "exponentiallr"], "the Keras or PyTorch name", "learning-rate-schedules", "exponential"),
        new("schedule", true, ["cosine_annealing", "cosine_decay", "cosineannealinglr"], "the PyTorch or Keras name", "learning-rate-schedules", "cosine"),
    ];

    /// <summary>The error for an unknown key <paramref name="key"/> of the object at <paramref name="objectPath"/>, which allows <paramref name="allowed"/>.</summary>
    public static string UnknownKey(string objectPath, string key, IReadOnlyList<string> allowed)
    {
        var foreign = Find(Scope(objectPath), ofType: false, key);
        if (foreign is { Instead: null })
            return $"not supported: '{key}', {foreign.Note} (see docs/spec.md#{foreign.Anchor})";
        string hint = "";
        if (foreign?.Instead is { } instead && allowed.Contains(instead)) hint = $"did you mean '{instead}'? ('{key}' is {foreign.Note}) ";
        else if (Closest(key, allowed) is { } close) hint = $"did you mean '{close}'? ";
        return $"unknown key '{key}'; {hint}expected one of: {string.Join(", ", allowed)}";
    }

    /// <summary>
    /// The error for a value <paramref name="value"/> at <paramref name="valuePath"/> that is not one of <paramref name="options"/>;
    /// <paramref name="valuePath"/> is the <c>type</c> key's path (<c>$.loss</c> for a loss given by name).
    /// </summary>
    public static string UnknownValue(string valuePath, string value, IReadOnlyList<string> options)
    {
        string list = string.Join(", ", options);
        string objectPath = valuePath.EndsWith(".type", StringComparison.Ordinal) ? valuePath[..^".type".Length] : valuePath;
        var (scope, noun) = Scope(objectPath) switch
        {
            "layer" => ("layer", "layer type"),
            "optimizer" => ("optimizer", "optimizer"),
            "loss" => ("loss", "loss"),
            "source" => ("source", "data source"),
            "schedule" => ("schedule", "schedule"),
            _ => ("", "value"),
        };
        var foreign = Find(scope, ofType: true, value);
        if (foreign is { Instead: null })
            return $"not supported: {noun} '{value}', {foreign.Note} (see docs/spec.md#{foreign.Anchor}); '{value}' is not one of: {list}";
        if (foreign?.Instead is { } instead && options.Contains(instead))
            return $"'{value}' is not one of: {list}; did you mean '{instead}'? ('{value}' is {foreign.Note}, docs/spec.md#{foreign.Anchor})";
        return Closest(value, options) is { } close ? $"'{value}' is not one of: {list}; did you mean '{close}'?" : $"'{value}' is not one of: {list}";
    }

    // The kind of object at a path: only objects whose keys or types users bring from other frameworks.
    private static string Scope(string objectPath) => objectPath switch
    {
        "$.optimizer" => "optimizer",
        "$.loss" => "loss",
        "$.data" => "data",
        "$.data.train" or "$.data.eval" => "source",
        "$.optimizer.schedule" => "schedule",
        _ when LayerPath().IsMatch(objectPath) => "layer",
        _ => "",
    };

    [GeneratedRegex(@"^\$\.model\.layers\[\d+\]$")]
    private static partial Regex LayerPath();

    private static ForeignName? Find(string scope, bool ofType, string name)
    {
        string key = Normalize(name);
        return scope.Length == 0 ? null : ForeignNames.FirstOrDefault(f => f.Scope == scope && f.OfType == ofType && f.Names.Any(n => Normalize(n) == key));
    }

    /// <summary>The candidate closest to <paramref name="name"/> by edit distance (ignoring case, '_' and '-'), when it is close enough to be a typo.</summary>
    internal static string? Closest(string name, IEnumerable<string> candidates)
    {
        string typed = Normalize(name);
        if (typed.Length == 0 || typed.Length > 64) return null;
        // One edit in a short name, two in a longer one: more would suggest unrelated keys.
        int allowed = typed.Length >= 8 ? 2 : 1;
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (string candidate in candidates)
        {
            int d = Distance(typed, Normalize(candidate));
            if (d < bestDistance)
            {
                (best, bestDistance) = (candidate, d);
            }
        }
        return bestDistance <= allowed ? best : null;
    }

    private static string Normalize(string name) =>
        new(name.Where(c => c is not ('_' or '-' or ' ')).Select(char.ToLowerInvariant).ToArray());

    // Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours each cost 1.
    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        }
        return d[a.Length, b.Length];
    }
}
