using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using Parity.Tensors;

namespace Parity.Data;

/// <summary>
/// Writes tensors in NumPy's array format (version 1.0, little-endian, C order) as the members of an <c>.npz</c>
/// archive, the way <c>numpy.savez</c> does (stored, not compressed): <c>numpy.load(path)[name]</c> gives each back.
/// A float32 tensor is written as <c>&lt;f4</c> (exactly: its values are float32 numbers), a float64 one as <c>&lt;f8</c>.
/// </summary>
public sealed class NpzWriter : IDisposable
{
    private readonly ZipArchive _zip;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>Starts an archive on <paramref name="stream"/> (left open).</summary>
    public NpzWriter(Stream stream) => _zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);

    /// <summary>Adds <paramref name="tensor"/> as the array <paramref name="name"/> (member <c>name.npy</c>).</summary>
    /// <exception cref="ArgumentException">The name is empty or already used.</exception>
    public void Add(string name, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (string.IsNullOrEmpty(name) || !_names.Add(name)) throw new ArgumentException($"array name '{name}' is empty or used twice", nameof(name));
        using var entry = _zip.CreateEntry(name + ".npy", CompressionLevel.NoCompression).Open();
        bool single = tensor.DType == DType.Float32;
        WriteHeader(entry, single ? "<f4" : "<f8", tensor.Shape);
        int size = single ? 4 : 8;
        var buffer = new byte[Math.Min(tensor.Length, 1 << 16) * size];
        for (int start = 0; start < tensor.Length; start += buffer.Length / size)
        {
            int count = Math.Min(buffer.Length / size, tensor.Length - start);
            for (int i = 0; i < count; i++)
            {
                if (single) BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(i * 4), (float)tensor.Data[start + i]);
                else BinaryPrimitives.WriteDoubleLittleEndian(buffer.AsSpan(i * 8), tensor.Data[start + i]);
            }
            entry.Write(buffer, 0, count * size);
        }
    }

    /// <summary>Finishes the archive.</summary>
    public void Dispose() => _zip.Dispose();

    // Magic, version 1.0, a little-endian header length, then the header dictionary padded with spaces to a multiple of
    // 64 bytes (counting the 10 bytes before it) and ended by a newline, as numpy.lib.format writes it.
    private static void WriteHeader(Stream stream, string descr, int[] shape)
    {
        string dims = shape.Length switch
        {
            0 => "()",
            1 => $"({shape[0].ToString(CultureInfo.InvariantCulture)},)",
            _ => "(" + string.Join(", ", shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + ")",
        };
        string dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}";
        int total = 10 + dict.Length + 1;
        int padded = (total + 63) / 64 * 64;
        var header = Encoding.ASCII.GetBytes(dict + new string(' ', padded - total) + "\n");
        Span<byte> prefix = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, 0, 0];
        BinaryPrimitives.WriteUInt16LittleEndian(prefix[8..], (ushort)header.Length);
        stream.Write(prefix);
        stream.Write(header);
    }
}
