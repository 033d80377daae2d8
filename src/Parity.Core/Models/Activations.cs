using System.Numerics;
using Parity.Specs;

namespace Parity.Models;

/// <summary>
/// The constants an activation needs in precision <typeparamref name="T"/>, converted once on the host, so the formulas
/// in <see cref="Activations"/> use nothing but arithmetic and <c>T</c>'s own functions (they also run inside the
/// native backend's GPU kernels, which cannot convert from double).
/// </summary>
public struct ActivationConstants<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    /// <summary>The <see cref="ActivationFunction"/> as an int.</summary>
    public int Function;

    /// <summary>The LeakyReLU slope or the ELU alpha.</summary>
    public T Parameter;

    /// <summary>1/2.</summary>
    public T Half;

    /// <summary>2.</summary>
    public T Two;

    /// <summary>3.</summary>
    public T Three;

    /// <summary>1/sqrt(2).</summary>
    public T InverseSqrt2;

    /// <summary>1/sqrt(pi).</summary>
    public T InverseSqrtPi;

    /// <summary>1/sqrt(2 pi): the standard normal density at 0.</summary>
    public T InverseSqrt2Pi;

    /// <summary>sqrt(2/pi): the tanh GELU's scale.</summary>
    public T TanhGeluScale;

    /// <summary>0.044715: the tanh GELU's cubic coefficient.</summary>
    public T TanhGeluCubic;

    /// <summary><see cref="Activations.ErfFractionDepth"/> as a <typeparamref name="T"/>.</summary>
    public T FractionDepth;

    /// <summary>Half the distance from 1 to the next value of <typeparamref name="T"/>: where the erf series stops.</summary>
    public T RoundingUnit;

    /// <summary>The constants of <paramref name="activation"/>.</summary>
    public static ActivationConstants<T> For(ActivationSpec activation)
    {
        ArgumentNullException.ThrowIfNull(activation);
        return new ActivationConstants<T>
        {
            Function = (int)activation.Function,
            Parameter = T.CreateTruncating(activation.Parameter),
            Half = T.CreateTruncating(0.5),
            Two = T.CreateTruncating(2.0),
            Three = T.CreateTruncating(3.0),
            InverseSqrt2 = T.CreateTruncating(1 / Math.Sqrt(2)),
            InverseSqrtPi = T.CreateTruncating(1 / Math.Sqrt(Math.PI)),
            InverseSqrt2Pi = T.CreateTruncating(1 / Math.Sqrt(2 * Math.PI)),
            TanhGeluScale = T.CreateTruncating(Math.Sqrt(2 / Math.PI)),
            TanhGeluCubic = T.CreateTruncating(0.044715),
            FractionDepth = T.CreateTruncating(Activations.ErfFractionDepth),
            RoundingUnit = T.One - T.BitDecrement(T.One),
        };
    }
}

/// <summary>
/// The activation formulas (forward and derivative) of every backend written in C#: the reference in float64 and
/// float32 and the native kernels. Each follows PyTorch's kernel formula, so the float64 reference is the same function
/// the frameworks evaluate, not another approximation of it (docs/conventions.md section 6).
/// </summary>
public static class Activations
{
    /// <summary>Levels of erfc's continued fraction: from |x| = 3 on, 60 give erf to within 2e-16 (checked against a libm erf).</summary>
    public const int ErfFractionDepth = 60;

    /// <summary>True for the functions whose derivative jumps at 0 (LeakyReLU always, ELU unless alpha is 1).</summary>
    public static bool HasKink(LayerSpec layer) =>
        layer is ReluSpec || (layer is ActivationSpec a && a.Function is ActivationFunction.LeakyRelu or ActivationFunction.Elu);

    /// <summary>f(x).</summary>
    public static T Forward<T>(ActivationConstants<T> c, T x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        switch ((ActivationFunction)c.Function)
        {
            case ActivationFunction.Tanh:
                return T.Tanh(x);
            case ActivationFunction.Sigmoid:
                return T.One / (T.One + T.Exp(-x));
            case ActivationFunction.LeakyRelu:
                return x > T.Zero ? x : x * c.Parameter;
            case ActivationFunction.GeluExact:
                // PyTorch GeluKernel (approximate='none'): x * 0.5 * (1 + erf(x / sqrt 2)).
                return x * c.Half * (T.One + Erf(c, x * c.InverseSqrt2));
            case ActivationFunction.GeluTanh:
                return c.Half * x * (T.One + T.Tanh(TanhGeluInner(c, x)));
            case ActivationFunction.Silu:
                return x / (T.One + T.Exp(-x));
            default:
                return x > T.Zero ? x : c.Parameter * (T.Exp(x) - T.One);
        }
    }

    /// <summary>
    /// f'(x). <paramref name="positive"/> picks the branch of a function with a kink (<see cref="HasKink"/>): normally
    /// x &gt; 0, or another backend's decision when a replay follows it at an input within rounding of 0.
    /// </summary>
    public static T Derivative<T>(ActivationConstants<T> c, T x, bool positive) where T : unmanaged, IFloatingPointIeee754<T>
    {
        switch ((ActivationFunction)c.Function)
        {
            case ActivationFunction.Tanh:
                T t = T.Tanh(x);
                return T.One - t * t;
            case ActivationFunction.Sigmoid:
                T s = T.One / (T.One + T.Exp(-x));
                return s * (T.One - s);
            case ActivationFunction.LeakyRelu:
                return positive ? T.One : c.Parameter;
            case ActivationFunction.GeluExact:
                // Phi(x) + x phi(x), PyTorch GeluBackwardKernel.
                T cdf = c.Half * (T.One + Erf(c, x * c.InverseSqrt2));
                T pdf = T.Exp(-c.Half * x * x) * c.InverseSqrt2Pi;
                return cdf + x * pdf;
            case ActivationFunction.GeluTanh:
                T inner = T.Tanh(TanhGeluInner(c, x));
                T innerSlope = c.TanhGeluScale * (T.One + c.Three * c.TanhGeluCubic * x * x);
                return c.Half * (T.One + inner) + c.Half * x * (T.One - inner * inner) * innerSlope;
            case ActivationFunction.Silu:
                T sig = T.One / (T.One + T.Exp(-x));
                return sig * (T.One + x * (T.One - sig));
            default:
                return positive ? T.One : c.Parameter * T.Exp(x);
        }
    }

    private static T TanhGeluInner<T>(ActivationConstants<T> c, T x) where T : unmanaged, IFloatingPointIeee754<T> =>
        c.TanhGeluScale * (x + c.TanhGeluCubic * x * x * x);

    /// <summary>
    /// erf(x) to within ten units in the last place of <typeparamref name="T"/> (.NET has no erf). Below |x| = 3 the series
    /// erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (1 3 5 ... (2n+1)), whose terms are all positive (no
    /// cancellation); above, 1 - erfc(x) with erfc from its continued fraction
    /// erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), <see cref="ErfFractionDepth"/> levels deep.
    /// </summary>
    public static T Erf<T>(ActivationConstants<T> c, T x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        T a = T.Abs(x), a2 = a * a, result;
        if (a < c.Three)
        {
            T term = a, sum = a, odd = T.One;
            for (int n = 0; n < 200 && term > sum * c.RoundingUnit; n++)
            {
                odd += c.Two;
                term *= c.Two * a2 / odd;
                sum += term;
            }
            result = c.Two * c.InverseSqrtPi * T.Exp(-a2) * sum;
        }
        else
        {
            T fraction = a, level = c.FractionDepth * c.Half;
            for (int k = 0; k < ErfFractionDepth; k++)
            {
                fraction = a + level / fraction;
                level -= c.Half;
            }
            result = T.One - T.Exp(-a2) * c.InverseSqrtPi / fraction;
        }
        return x < T.Zero ? -result : result;
    }
}
