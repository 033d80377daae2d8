using ZstdSharp;

namespace Parity.Tracing;

/// <summary>How a trace writer stores the values in <c>tensors.bin</c> (docs/trace.md, "Compression").</summary>
public enum TraceCompression
{
    /// <summary>Raw little-endian values, back to back.</summary>
    None,

    /// <summary>Each tensor one zstd frame of its byte-shuffled values (small tensors and those that do not shrink stay raw).</summary>
    Zstd,
}

/// <summary>The compression a run uses unless told otherwise.</summary>
public static class TraceCompressions
{
    /// <summary>What a run writes unless told otherwise (chosen by the measurements in README "Benchmarks").</summary>
    public const TraceCompression Default = TraceCompression.None;
}

/// <summary>
/// The one compressed encoding of a tensor's bytes in <c>tensors.bin</c>: the little-endian values byte-shuffled (all
/// first bytes of every value, then all second bytes, ..., so the sign-and-exponent bytes sit together, as Blosc and
/// HDF5 do) and then one zstd frame. One frame per tensor, so a reader seeks to a tensor without decompressing others.
/// </summary>
internal static class ShuffledZstd
{
    /// <summary>The codec name a record line gives a compressed entry.</summary>
    public const string Name = "shuffle-zstd";

    /// <summary>Tensors of fewer raw bytes are stored raw: a frame's header would cost more than it saves.</summary>
    public const int MinBytes = 256;

    // zstd level 1: the values of a float tensor are mostly noise in their low bytes, and higher levels bought almost
    // nothing on traces while costing several times the time (docs/trace.md, "Compression").
    private const int Level = 1;

    [ThreadStatic] private static Compressor? t_compressor;
    [ThreadStatic] private static Decompressor? t_decompressor;

    /// <summary>Room <see cref="Encode"/> may need for <paramref name="rawBytes"/> bytes.</summary>
    public static int Bound(int rawBytes) => Compressor.GetCompressBound(rawBytes);

    /// <summary>
    /// Shuffles <paramref name="raw"/> (values of <paramref name="width"/> bytes) into <paramref name="scratch"/> and
    /// compresses that into <paramref name="frame"/>; returns the frame's length, or -1 when it would not be shorter
    /// than the raw bytes (the tensor is then stored raw).
    /// </summary>
    public static int Encode(ReadOnlySpan<byte> raw, int width, Span<byte> scratch, Span<byte> frame)
    {
        Shuffle(raw, width, scratch[..raw.Length]);
        t_compressor ??= NewCompressor();
        return t_compressor.TryWrap(scratch[..raw.Length], frame, out int written) && written < raw.Length ? written : -1;
    }

    // Each frame carries zstd's content checksum (XXH64, 4 bytes): a trace without a seal (a run that died) has nothing
    // else to catch a damaged frame that still decodes.
    private static Compressor NewCompressor()
    {
        var compressor = new Compressor(Level);
        compressor.SetParameter(ZstdSharp.Unsafe.ZSTD_cParameter.ZSTD_c_checksumFlag, 1);
        return compressor;
    }

    /// <summary>
    /// Decompresses <paramref name="frame"/> into <paramref name="scratch"/> and unshuffles it into <paramref name="raw"/>;
    /// returns null, or what is wrong with the frame (it does not decompress, or not to exactly the raw length).
    /// </summary>
    public static string? Decode(ReadOnlySpan<byte> frame, int width, Span<byte> scratch, Span<byte> raw)
    {
        t_decompressor ??= new Decompressor();
        int written;
        try
        {
            ulong size = Decompressor.GetDecompressedSize(frame);
            if (size != (ulong)raw.Length) return $"the frame says {size} bytes, the entry's shape and dtype {raw.Length}";
            if (!t_decompressor.TryUnwrap(frame, scratch[..raw.Length], out written)) return "it decompresses to more bytes than the entry holds";
        }
        catch (ZstdException e)
        {
            // A decoder that failed mid-frame may keep state; the next frame starts from a fresh one.
            t_decompressor = null;
            return $"not a valid zstd frame ({e.Message})";
        }
        if (written != raw.Length) return $"it decompresses to {written} bytes; the entry's shape and dtype need {raw.Length}";
        Unshuffle(scratch[..raw.Length], width, raw);
        return null;
    }

    private static void Shuffle(ReadOnlySpan<byte> raw, int width, Span<byte> shuffled)
    {
        int count = raw.Length / width;
        for (int b = 0; b < width; b++)
        {
            var plane = shuffled.Slice(b * count, count);
            for (int i = 0; i < count; i++) plane[i] = raw[i * width + b];
        }
    }

    private static void Unshuffle(ReadOnlySpan<byte> shuffled, int width, Span<byte> raw)
    {
        int count = raw.Length / width;
        for (int b = 0; b < width; b++)
        {
            var plane = shuffled.Slice(b * count, count);
            for (int i = 0; i < count; i++) raw[i * width + b] = plane[i];
        }
    }
}
