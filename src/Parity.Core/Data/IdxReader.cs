using System.Buffers.Binary;
using System.IO.Compression;

namespace Parity.Data;

/// <summary>
/// Reads IDX files (the MNIST / Fashion-MNIST format: magic 0x0000 type dims, big-endian sizes, then
/// the data), raw or gzip-compressed (detected from the gzip magic bytes, not the file name).
/// </summary>
public static class IdxReader
{
    /// <summary>Reads an unsigned-byte IDX file: its dimensions and bytes.</summary>
    /// <exception cref="InvalidDataException">The file is not an unsigned-byte IDX file, or is truncated.</exception>
    public static (int[] Dims, byte[] Data) ReadBytes(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"IDX file not found: {path}", path);
        using var file = File.OpenRead(path);
        Stream stream = file;
        int b0 = file.ReadByte(), b1 = file.ReadByte();
        file.Position = 0;
        if (b0 == 0x1f && b1 == 0x8b) stream = new GZipStream(file, CompressionMode.Decompress);
        using var _ = stream;

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
            count *= dims[i];
        }
        if (count > int.MaxValue) throw new InvalidDataException($"{path}: {count} elements is too many");
        if (stream == file && file.Length - file.Position < count)
            throw new InvalidDataException($"{path}: file ends before {count} data bytes ({file.Length - file.Position} present)");
        return (dims, ReadData(stream, (int)count, path));
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
    /// Loads an image file and a label file as a data set: each image flattened, pixels divided by 255
    /// when <paramref name="normalize"/>, at most <paramref name="limit"/> samples.
    /// </summary>
    public static DataSet Load(string imagesPath, string labelsPath, int? limit, bool normalize, int classes = 10)
    {
        var (imgDims, pixels) = ReadBytes(imagesPath);
        var (lblDims, labelBytes) = ReadBytes(labelsPath);
        if (lblDims.Length != 1) throw new InvalidDataException($"{labelsPath}: labels must be rank 1, got rank {lblDims.Length}");
        if (imgDims[0] != lblDims[0])
            throw new InvalidDataException($"{imagesPath} has {imgDims[0]} images but {labelsPath} has {lblDims[0]} labels");
        if (imgDims.Length < 2) throw new InvalidDataException($"{imagesPath}: images must have rank 2 or more, got rank {imgDims.Length}");
        int features = pixels.Length == 0 ? 0 : pixels.Length / imgDims[0];
        if (features == 0) throw new InvalidDataException($"{imagesPath}: no pixels (dimensions {string.Join("x", imgDims)})");
        int n = Math.Min(imgDims[0], limit ?? int.MaxValue);
        var inputs = new float[(long)n * features];
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
