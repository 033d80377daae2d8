using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;
using Parity.IO;

namespace Parity.Data;

/// <summary>One array read from a NumPy <c>.npy</c> file (or an <c>.npz</c> member): its shape and its values widened to float64.</summary>
/// <param name="Shape">Dimensions in C order.</param>
/// <param name="Values">The elements in C (row-major) order, converted exactly from the stored type.</param>
/// <param name="Integral">True when the stored type is an integer or boolean type.</param>
public sealed record NpyArray(int[] Shape, double[] Values, bool Integral)
{
    /// <summary>The shape as NumPy prints it, e.g. (100, 12).</summary>
    public string ShapeText => "(" + string.Join(", ", Shape) + (Shape.Length == 1 ? ",)" : ")");
}

/// <summary>
/// Reads NumPy's array format (versions 1 to 3: the magic <c>\x93NUMPY</c>, a header dictionary with <c>descr</c>,
/// <c>fortran_order</c> and <c>shape</c>, then the raw elements) and <c>.npz</c> archives of such files (plain or
/// compressed, as <c>numpy.savez</c> and <c>numpy.savez_compressed</c> write them). Numeric types only: booleans,
/// signed and unsigned integers of 1 to 8 bytes, float16/32/64, either byte order. The header's size is checked
/// against the bytes present before any buffer is allocated; every error names the file and the byte offset.
/// </summary>
public static partial class NpyReader
{
    /// <summary>Largest array read, in elements (the data limit of a spec).</summary>
    public const long MaxElements = 1L << 28;

    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Reads the <c>.npy</c> file at <paramref name="path"/>; only a regular file is opened.</summary>
    /// <exception cref="InvalidDataException">The file is not a readable numeric array.</exception>
    public static NpyArray Read(string path)
    {
        using var file = DataFile.OpenRead(path);
        return Read(file, file.Length, path);
    }

    /// <summary>Reads only the shape of the <c>.npy</c> file at <paramref name="path"/>.</summary>
    public static int[] ReadShape(string path)
    {
        using var file = DataFile.OpenRead(path);
        return ReadHeader(file, file.Length, path).Shape;
    }

    /// <summary>Reads array <paramref name="name"/> (with or without its <c>.npy</c> suffix) of the archive at <paramref name="path"/>.</summary>
    /// <exception cref="InvalidDataException">The archive or the member is not readable, or the member is absent.</exception>
    public static NpyArray ReadMember(string path, string name, bool shapeOnly = false)
    {
        using var file = DataFile.OpenRead(path);
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(file, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: not an .npz (zip) archive: {e.Message}", e);
        }
        using (zip)
        {
            var entry = zip.GetEntry(name.EndsWith(".npy", StringComparison.Ordinal) ? name : name + ".npy")
                ?? throw new InvalidDataException($"{path}: the archive holds no array '{name}'; it holds: "
                    + string.Join(", ", zip.Entries.Select(e => Path.GetFileNameWithoutExtension(e.FullName))));
            string where = $"{path}[{entry.FullName}]";
            // Deflate expands at most about 1032:1; a member claiming more than that of its compressed size is corrupt.
            if (entry.Length > Math.Max(entry.CompressedLength, 1) * 1032)
                throw new InvalidDataException($"{where}: the archive claims {entry.Length} bytes from {entry.CompressedLength} compressed bytes, more than deflate can produce");
            try
            {
                using var stream = entry.Open();
                if (shapeOnly) return new NpyArray(ReadHeader(stream, entry.Length, where).Shape, [], false);
                return Read(stream, entry.Length, where);
            }
            catch (InvalidDataException e) when (!e.Message.StartsWith(where, StringComparison.Ordinal))
            {
                throw new InvalidDataException($"{where}: {e.Message}", e);
            }
        }
    }

    private static NpyArray Read(Stream stream, long length, string where)
    {
        var header = ReadHeader(stream, length, where);
        long count = header.Count;
        var bytes = new byte[count * header.ItemSize];
        int read = stream.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
        if (read < bytes.Length)
            throw new InvalidDataException($"{where}: truncated at byte {header.DataOffset + read}: the header's shape {Shape(header.Shape)} of '{header.Descr}' needs {bytes.Length} data bytes");
        var values = new double[count];
        for (long i = 0; i < count; i++) values[i] = Element(bytes.AsSpan((int)(i * header.ItemSize), header.ItemSize), header);
        foreach (double v in values)
            if (!double.IsFinite(v)) throw new InvalidDataException($"{where}: holds a non-finite value ({v})");
        var shape = header.Shape;
        if (header.FortranOrder && shape.Length > 1) values = ToCOrder(values, shape);
        return new NpyArray(shape, values, header.Kind is 'i' or 'u' or 'b');
    }

    private sealed record Header(string Descr, char Kind, int ItemSize, bool BigEndian, bool FortranOrder, int[] Shape, long Count, long DataOffset);

    private static Header ReadHeader(Stream stream, long length, string where)
    {
        Span<byte> prefix = stackalloc byte[10];
        if (ReadFully(stream, prefix) < 8 || !prefix[..6].SequenceEqual(Magic))
            throw new InvalidDataException($"{where}: not a NumPy .npy file (it does not start with the \\x93NUMPY magic bytes)");
        int major = prefix[6];
        if (major is < 1 or > 3) throw new InvalidDataException($"{where}: byte 6: .npy format version {major}.{prefix[7]} is not 1, 2 or 3");
        int lengthBytes = major == 1 ? 2 : 4;
        Span<byte> lengthField = stackalloc byte[4];
        prefix.Slice(8, 2).CopyTo(lengthField);
        if (lengthBytes == 4 && ReadFully(stream, lengthField[2..]) < 2) throw new InvalidDataException($"{where}: truncated in the header length at byte 10");
        long headerLength = lengthBytes == 2 ? BinaryPrimitives.ReadUInt16LittleEndian(lengthField) : BinaryPrimitives.ReadUInt32LittleEndian(lengthField);
        long dataOffset = 8 + lengthBytes + headerLength;
        if (headerLength > 1 << 20 || dataOffset > length)
            throw new InvalidDataException($"{where}: byte 8: the header claims {headerLength} bytes, more than the file's {length}");
        var text = new byte[headerLength];
        if (ReadFully(stream, text) < text.Length) throw new InvalidDataException($"{where}: truncated in the header (byte {8 + lengthBytes})");
        string dict = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(text).Trim();
        int at = 8 + lengthBytes;

        string descr = DictEntry(DescrPattern(), dict, "descr", where, at);
        bool fortran = DictEntry(FortranPattern(), dict, "fortran_order", where, at) == "True";
        string shapeText = DictEntry(ShapePattern(), dict, "shape", where, at);
        var shape = shapeText.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(d => int.TryParse(d, NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v
                : throw new InvalidDataException($"{where}: byte {at}: shape dimension '{d}' is not a non-negative 32-bit integer"))
            .ToArray();

        var (kind, size, bigEndian) = ParseDescr(descr, where, at);
        long count = 1;
        foreach (int d in shape)
        {
            count *= d;
            if (count > MaxElements) throw new InvalidDataException($"{where}: shape {Shape(shape)} holds more than the limit of {MaxElements} values");
        }
        if (dataOffset + count * size > length)
            throw new InvalidDataException($"{where}: shape {Shape(shape)} of '{descr}' needs {count * size} data bytes from byte {dataOffset}, but the file holds {length - dataOffset}");
        return new Header(descr, kind, size, bigEndian, fortran, shape, count, dataOffset);
    }

    private static string DictEntry(Regex pattern, string dict, string key, string where, int at)
    {
        var m = pattern.Match(dict);
        return m.Success ? m.Groups[1].Value : throw new InvalidDataException($"{where}: byte {at}: the header has no readable '{key}' entry: {Clip(dict)}");
    }

    private static (char Kind, int Size, bool BigEndian) ParseDescr(string descr, string where, int at)
    {
        char order = descr.Length > 0 ? descr[0] : ' ';
        string body = order is '<' or '>' or '|' or '=' ? descr[1..] : descr;
        if (body.Length >= 2 && body[0] is 'b' or 'i' or 'u' or 'f' && int.TryParse(body[1..], NumberStyles.None, CultureInfo.InvariantCulture, out int size)
            && (body[0] switch { 'b' => size == 1, 'f' => size is 2 or 4 or 8, _ => size is 1 or 2 or 4 or 8 }))
            return (body[0], size, order == '>');
        throw new InvalidDataException($"{where}: byte {at}: element type '{descr}' is not a numeric type Parity reads (bool, int8..int64, uint8..uint64, float16/32/64)");
    }

    private static double Element(ReadOnlySpan<byte> b, Header h) => (h.Kind, h.ItemSize, h.BigEndian) switch
    {
        ('b', _, _) => b[0] != 0 ? 1 : 0,
        ('u', 1, _) => b[0],
        ('i', 1, _) => (sbyte)b[0],
        ('i', 2, false) => BinaryPrimitives.ReadInt16LittleEndian(b),
        ('i', 2, true) => BinaryPrimitives.ReadInt16BigEndian(b),
        ('u', 2, false) => BinaryPrimitives.ReadUInt16LittleEndian(b),
        ('u', 2, true) => BinaryPrimitives.ReadUInt16BigEndian(b),
        ('i', 4, false) => BinaryPrimitives.ReadInt32LittleEndian(b),
        ('i', 4, true) => BinaryPrimitives.ReadInt32BigEndian(b),
        ('u', 4, false) => BinaryPrimitives.ReadUInt32LittleEndian(b),
        ('u', 4, true) => BinaryPrimitives.ReadUInt32BigEndian(b),
        ('i', 8, false) => BinaryPrimitives.ReadInt64LittleEndian(b),
        ('i', 8, true) => BinaryPrimitives.ReadInt64BigEndian(b),
        ('u', 8, false) => BinaryPrimitives.ReadUInt64LittleEndian(b),
        ('u', 8, true) => BinaryPrimitives.ReadUInt64BigEndian(b),
        ('f', 2, false) => (double)BinaryPrimitives.ReadHalfLittleEndian(b),
        ('f', 2, true) => (double)BinaryPrimitives.ReadHalfBigEndian(b),
        ('f', 4, false) => BinaryPrimitives.ReadSingleLittleEndian(b),
        ('f', 4, true) => BinaryPrimitives.ReadSingleBigEndian(b),
        ('f', 8, false) => BinaryPrimitives.ReadDoubleLittleEndian(b),
        _ => BinaryPrimitives.ReadDoubleBigEndian(b),
    };

    // Fortran order stores the first index fastest; C order (what the data sets use) the last.
    private static double[] ToCOrder(double[] f, int[] shape)
    {
        var c = new double[f.Length];
        var index = new int[shape.Length];
        for (long i = 0; i < f.Length; i++)
        {
            long fortranOffset = 0, stride = 1;
            for (int d = 0; d < shape.Length; d++)
            {
                fortranOffset += index[d] * stride;
                stride *= shape[d];
            }
            c[i] = f[fortranOffset];
            for (int d = shape.Length - 1; d >= 0 && ++index[d] == shape[d]; d--) index[d] = 0;
        }
        return c;
    }

    // Stream.ReadAtLeast without the exception: how many bytes were there (a short count means the file ended).
    private static int ReadFully(Stream stream, Span<byte> buffer) => stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);

    private static string Shape(int[] shape) => "(" + string.Join(", ", shape) + ")";

    private static string Clip(string s) => s.Length <= 120 ? s : s[..120] + "...";

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")]
    private static partial Regex DescrPattern();

    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranPattern();

    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapePattern();
}
