namespace Parity.Tensors;

/// <summary>The floating-point precision a tensor was computed in.</summary>
public enum DType
{
    /// <summary>IEEE 754 binary32.</summary>
    Float32,

    /// <summary>IEEE 754 binary64: the precision of the reference oracle.</summary>
    Float64,
}

/// <summary>Parsing and naming of <see cref="DType"/> as written in specs, traces and worker messages.</summary>
public static class DTypes
{
    /// <summary>The spelling used in every file format: <c>float32</c> or <c>float64</c>.</summary>
    public static string Name(this DType dtype) => dtype == DType.Float32 ? "float32" : "float64";

    /// <summary>Size of one element in bytes.</summary>
    public static int Size(this DType dtype) => dtype == DType.Float32 ? 4 : 8;

    /// <summary>Parses <c>float32</c>/<c>float64</c> (also <c>f32</c>/<c>f64</c>); null when unknown.</summary>
    public static DType? TryParse(string? text) => text?.ToLowerInvariant() switch
    {
        "float32" or "f32" => DType.Float32,
        "float64" or "f64" => DType.Float64,
        _ => null,
    };
}
