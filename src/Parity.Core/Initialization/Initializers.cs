using Parity.Randomness;
using Parity.Specs;

namespace Parity.Initialization;

/// <summary>
/// The harness's initializers, each written from the framework source it imitates (docs/conventions.md
/// section 2). fan_in and fan_out are the linear layer's in and out widths.
/// </summary>
public static class Initializers
{
    // Keras truncates at 2 sigma and divides sigma by the std of a unit normal truncated to [-2, 2],
    // so the final std is the requested one (tf_keras/initializers/initializers.py, VarianceScaling).
    private const double KerasTruncationCorrection = 0.87962566103423978;

    /// <summary>Fills <paramref name="values"/> as <paramref name="spec"/> says.</summary>
    /// <param name="spec">The initializer.</param>
    /// <param name="values">Destination, row-major in the canonical layout.</param>
    /// <param name="fanIn">Input width of the layer.</param>
    /// <param name="fanOut">Output width of the layer.</param>
    /// <param name="rng">The parameter's own stream.</param>
    public static void Fill(InitializerSpec spec, Span<double> values, int fanIn, int fanOut, ParityRandom rng)
    {
        switch (spec.Kind)
        {
            case "zeros": values.Clear(); break;
            case "ones": values.Fill(1.0); break;
            // torch.nn.init.kaiming_normal_: untruncated N(0, 2/fan_in); Chainer HeNormal likewise.
            case "he_normal": Normal(values, Math.Sqrt(2.0 / fanIn), rng); break;
            case "he_normal_truncated": TruncatedNormal(values, Math.Sqrt(2.0 / fanIn) / KerasTruncationCorrection, rng); break;
            // Chainer LeCunNormal: untruncated N(0, 1/fan_in).
            case "lecun_normal": Normal(values, Math.Sqrt(1.0 / fanIn), rng); break;
            case "glorot_uniform": Uniform(values, Math.Sqrt(6.0 / (fanIn + fanOut)), rng); break;
            // torch.nn.Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)) gives bound
            // sqrt(6 / ((1 + 5) fan_in)) = 1/sqrt(fan_in); the bias uses the same bound.
            case "pytorch_default": Uniform(values, 1.0 / Math.Sqrt(fanIn), rng); break;
            // cs231n FullyConnectedNet: weight_scale * randn.
            case "normal": Normal(values, spec.Std, rng); break;
            default: throw new ArgumentException($"unknown initializer '{spec.Kind}'");
        }
    }

    private static void Normal(Span<double> values, double std, ParityRandom rng)
    {
        for (int i = 0; i < values.Length; i++) values[i] = std * rng.NextNormal();
    }

    private static void TruncatedNormal(Span<double> values, double sigma, ParityRandom rng)
    {
        for (int i = 0; i < values.Length; i++)
        {
            double z;
            do z = rng.NextNormal(); while (Math.Abs(z) > 2.0);
            values[i] = sigma * z;
        }
    }

    private static void Uniform(Span<double> values, double bound, ParityRandom rng)
    {
        for (int i = 0; i < values.Length; i++) values[i] = rng.NextUniform(-bound, bound);
    }
}
