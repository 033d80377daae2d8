using System.Buffers.Binary;
using System.IO.Compression;
using Parity.IO;

namespace Parity.Data;

/// <summary>
/// Reads IDX files (the MNIST / Fashion-MNIST format: magic 0x0000 type dims, big-endian sizes, then
/// the data), raw or gzip-compressed (detected from the gzip magic bytes, not the file name). Only regular
/// files are opened (<see cref="DataFile"/>), and the header's sizes are checked against what the file can hold
/// before any data buffer is allocated.
/// </summary>
public static class IdxReader
{
    // Deflate encodes at most 258 bytes per 2-bit code: about 1032 output bytes per input byte. A gzip file whose
    // header claims more than that is corrupt, and saying so costs nothing, where decompressing it costs the claim.
    private const long MaxDeflateRatio = 1032;

    /// <summary>Reads an unsigned-byte IDX file's dimensions without reading its data.</summary>
    /// <exception cref="InvalidDataException">The file is not an unsigned-byte IDX file, or cannot hold what its header claims.</exception>
    public static int[] ReadDimensions(string path)
    {
        using var file = DataFile.OpenRead(path);
        using var stream = Decompressed(file);
        return ReadHeader(stream, file, path).Dims;
    }

    /// <summary>Reads an unsigned-byte IDX file: its dimensions and the bytes of its first <paramref name="items"/> items (all when null).</summary>
    /// <exception cref="InvalidDataException">The file is not an unsigned-byte IDX file, or is truncated.</exception>
    public static (int[] Dims, byte[] Data) ReadBytes(string path, int? items = null)
    {
        using var file = DataFile.OpenRead(path);
        using var stream = Decompressed(file);
        var (dims, count) = ReadHeader(stream, file, path);
        if (items is int n && n < dims[0]) count = count / dims[0] * n;
        return (dims, ReadData(stream, (int)count, path));
    }

    private static Stream Decompressed(FileStream file)
    {
        int b0 = file.ReadByte(), b1 = file.ReadByte();
        file.Position = 0;
        return b0 == 0x1f && b1 == 0x8b ? new GZipStream(file, CompressionMode.Decompress, leaveOpen: true) : file;
    }

    private static (int[] Dims, long Count) ReadHeader(Stream stream, FileStream file, string path)
    {
        Span<byte> magic = stackalloc byte[4];
        ReadExactly(stream, magic, path, "the magic number");
        if (magic[0] != 0 || magic[1] != 0)
            throw new InvalidDataException($"{path}: not an IDX file (magic bytes {magic[0]:x2}{magic[1]:x2}, expected 0000)");
        if (magic[2] != 0x08)
            throw new InvalidDataException($"{path}: IDX element type 0x{magic[2]:x2} is not unsigned byte (0x08)");
        int rank = magic[3];
        if (rank is < 1 or > 4) throw new InvalidDataException($"{path}: IDX rank {rank} is outside 1..4");

        var dims = new int[rank];
        Span<byte> four = stackalloc byte[4];
        long count = 1;
        for (int i = 0; i < rank; i++)
        {
            ReadExactly(stream, four, path, $"dimension {i}");
            dims[i] = BinaryPrimitives.ReadInt32BigEndian(four);
            if (dims[i] < 0) throw new InvalidDataException($"{path}: dimension {i} is negative ({dims[i]})");
            count *= dims[i]; // at most 4 factors below 2^31: no overflow before the check below
        }
        if (count > int.MaxValue) throw new InvalidDataException($"{path}: {count} elements is too many");
        if (stream == file && file.Length - file.Position < count)
            throw new InvalidDataException($"{path}: file ends before {count} data bytes ({file.Length - file.Position} present)");
        if (stream != file && count > MaxDeflateRatio * file.Length)
            throw new InvalidDataException($"{path}: the header claims {count} data bytes, more than a gzip file of {file.Length} bytes can hold");
        return (dims, count);
    }

    // A gzip stream's length is unknown until it is read: the buffer grows as bytes arrive, so a corrupt
    // header that claims gigabytes fails where the data ends instead of allocating them first.
    private static byte[] ReadData(Stream s, int count, string path)
    {
        var data = new byte[Math.Min(count, 1 << 24)];
        int filled = 0;
        while (filled < count)
        {
            if (filled == data.Length) Array.Resize(ref data, (int)Math.Min(count, 2L * data.Length));
            int n;
            try
            {
                n = s.Read(data, filled, data.Length - filled);
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"{path}: corrupt gzip stream while reading {count} data bytes: {e.Message}");
            }
            if (n == 0) throw new InvalidDataException($"{path}: file ends before {count} data bytes ({filled} present)");
            filled += n;
        }
        return data;
    }

    /// <summary>
    /// The samples and features an image file and a label file hold (at most <paramref name="limit"/> samples), from their
    /// headers alone: what <see cref="Load"/> would allocate, known before it does.
    /// </summary>
    public static (int Count, int Features) Shape(string imagesPath, string labelsPath, int? limit)
    {
        var imgDims = ReadDimensions(imagesPath);
        var lblDims = ReadDimensions(labelsPath);
        return Check(imgDims, lblDims, imagesPath, labelsPath, limit);
    }

    /// <summary>
    /// Loads an image file and a label file as a data set: each image flattened, pixels divided by 255
    /// when <paramref name="normalize"/>, at most <paramref name="limit"/> samples (only those are read).
    /// </summary>
    public static DataSet Load(string imagesPath, string labelsPath, int? limit, bool normalize, int classes = 10)
    {
        var (n, features) = Shape(imagesPath, labelsPath, limit);
        var (_, pixels) = ReadBytes(imagesPath, n);
        var (_, labelBytes) = ReadBytes(labelsPath, n);
        var inputs = new float[checked(n * features)];
        float scale = normalize ? 1f / 255f : 1f;
        for (int i = 0; i < inputs.Length; i++) inputs[i] = pixels[i] * scale;
        var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            labels[i] = labelBytes[i];
            if (labels[i] >= classes) throw new InvalidDataException($"{labelsPath}: label {labels[i]} of sample {i} is outside 0..{classes - 1}");
        }
        return new DataSet(inputs, labels, features, classes, imagesPath);
    }

    private static (int Count, int Features) Check(int[] imgDims, int[] lblDims, string imagesPath, string labelsPath, int? limit)
    {
        if (lblDims.Length != 1) throw new InvalidDataException($"{labelsPath}: labels must be rank 1, got rank {lblDims.Length}");
        if (imgDims[0] != lblDims[0])
            throw new InvalidDataException($"{imagesPath} has {imgDims[0]} images but {labelsPath} has {lblDims[0]} labels");
        if (imgDims.Length < 2) throw new InvalidDataException($"{imagesPath}: images must have rank 2 or more, got rank {imgDims.Length}");
        long features = imgDims.Skip(1).Aggregate(1L, (a, b) => a * b);
        if (features == 0 || imgDims[0] == 0) throw new InvalidDataException($"{imagesPath}: no pixels (dimensions {string.Join("x", imgDims)})");
        return (Math.Min(imgDims[0], limit ?? int.MaxValue), (int)features);
    }

    private static void ReadExactly(Stream s, Span<byte> buffer, string path, string what)
    {
        try
        {
            s.ReadExactly(buffer);
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException($"{path}: file ends before {what}");
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: corrupt gzip stream while reading {what}: {e.Message}");
        }
    }
}
