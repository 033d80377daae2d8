using System.Buffers;
using System.Text.Json;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Backends.Workers.Protocol;

/// <summary>
/// Tensors on the wire (docs/worker-protocol.md, "Tensors"): <c>{"dtype","shape","data"}</c> with the
/// values as little-endian bytes in base64, or <c>{"dtype","shape","file"}</c> naming a file of those raw
/// bytes. Decoding checks everything a broken worker could get wrong and says which tensor and why.
/// </summary>
internal static class TensorCodec
{
    /// <summary>
    /// Writes <paramref name="tensor"/> as the value of <paramref name="property"/>, in <paramref name="dtype"/>;
    /// as a file in <paramref name="fileDirectory"/> when its raw bytes exceed <paramref name="fileThreshold"/>.
    /// Returns the file written, if any, for the caller to remove once the request is answered.
    /// </summary>
    public static IEnumerable<string> Write(Utf8JsonWriter w, string property, Tensor tensor, DType dtype, long fileThreshold, string? fileDirectory)
    {
        var bytes = TensorBytes.Rent(tensor, dtype);
        try
        {
            w.WriteStartObject(property);
            w.WriteString("dtype", dtype.Name());
            w.WriteStartArray("shape");
            foreach (int d in tensor.Shape) w.WriteNumberValue(d);
            w.WriteEndArray();
            string? path = null;
            if (fileDirectory is not null && bytes.Count > fileThreshold)
            {
                path = Path.Combine(fileDirectory, $"request-{Guid.NewGuid():N}.bin");
                using (var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write)) RandomAccess.Write(file, bytes, 0);
                w.WriteString("file", path);
            }
            else
            {
                w.WriteBase64String("data", bytes);
            }
            w.WriteEndObject();
            return path is null ? [] : [path];
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes.Array!);
        }
    }

    /// <summary>
    /// Reads a tensor object; <paramref name="what"/> names it in messages (e.g. <c>forward:l1 in the step 3
    /// answer</c>). Its shape must be <paramref name="expectedShape"/> (when given), checked before any value is
    /// decoded or read. A <c>file</c> must be a regular file in <paramref name="exchange"/> and is deleted once read
    /// (the worker hands it over); without an exchange directory files are refused.
    /// </summary>
    public static Tensor Read(JsonElement e, string what, int[]? expectedShape = null, ExchangeDirectory? exchange = null)
    {
        if (e.ValueKind != JsonValueKind.Object) throw new MalformedTensorException($"{what} is not a tensor object");
        if (!e.TryGetProperty("dtype", out var dt) || DTypes.TryParse(dt.ValueKind == JsonValueKind.String ? dt.GetString() : null) is not DType dtype)
            throw new MalformedTensorException($"{what} has no valid \"dtype\" (float32 or float64)");
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new MalformedTensorException($"{what} has no \"shape\" array");
        var shape = new int[sh.GetArrayLength()];
        long count = 1;
        int k = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int dim) || dim < 0)
                throw new MalformedTensorException($"{what} has an invalid shape {WorkerProcess.Preview(sh.GetRawText())}");
            shape[k++] = dim;
            // Beyond Array.MaxLength no tensor can exist: refused before the product overflows.
            if (dim > 0 && count > Array.MaxLength / dim)
                throw new MalformedTensorException($"{what} has a shape {WorkerProcess.Preview(sh.GetRawText())} too large for any tensor");
            count *= dim;
        }
        if (expectedShape is not null && !shape.AsSpan().SequenceEqual(expectedShape))
            throw new MalformedTensorException($"{what} has shape [{string.Join(",", shape)}]; expected [{string.Join(",", expectedShape)}]");
        long expected = count * dtype.Size();

        if (e.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.String)
        {
            if (!data.TryGetBytesFromBase64(out var bytes))
                throw new MalformedTensorException($"{what}: \"data\" is not valid base64");
            if (bytes.Length != expected)
                throw new MalformedTensorException($"{what} holds {bytes.Length} bytes but shape [{string.Join(",", shape)}] of {dtype.Name()} needs {expected}");
            return TensorBytes.ToTensor(bytes, shape, dtype);
        }
        if (e.TryGetProperty("file", out var file) && file.ValueKind == JsonValueKind.String)
        {
            if (exchange is null) throw new MalformedTensorException($"{what}: names a file, but this exchange has no exchange directory");
            var bytes = exchange.ReadAndRemove(file.GetString()!, expected, what);
            try
            {
                return TensorBytes.ToTensor(bytes, shape, dtype);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(bytes.Array!);
            }
        }
        throw new MalformedTensorException($"{what} has neither \"data\" (base64) nor \"file\"");
    }
}

/// <summary>A tensor in a worker's answer that cannot be decoded or does not fit its key.</summary>
internal sealed class MalformedTensorException(string message) : Exception(message);
