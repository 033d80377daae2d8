using System.Globalization;
using nietras.SeparatedValues;
using Parity.IO;

namespace Parity.Data;

/// <summary>
/// Reads a CSV file of numbers with a header row: one column holds the class label, the feature columns (all the
/// others unless named) the inputs. Parsed with Sep (RFC 4180 quoting, invariant culture). Every problem names the
/// file, the line and the column.
/// </summary>
public static class CsvData
{
    // Sep's own column-count check is off: CheckWidth says which line is wrong in the words the other errors use.

    /// <summary>Which columns to read and how.</summary>
    /// <param name="Path">The file.</param>
    /// <param name="Label">Name of the label column.</param>
    /// <param name="Features">Names of the feature columns, in input order; null: every column but the label, in file order.</param>
    /// <param name="Separator">The field separator.</param>
    public sealed record Layout(string Path, string Label, IReadOnlyList<string>? Features, char Separator);

    /// <summary>The number of data rows (at most <paramref name="limit"/>) and of features, without parsing the values.</summary>
    /// <exception cref="InvalidDataException">The header lacks a named column or a row has the wrong number of fields.</exception>
    public static (int Count, int Features) Shape(Layout layout, int? limit)
    {
        return Read(layout, (reader, columns) =>
        {
            int count = 0;
            foreach (var row in reader)
            {
                CheckWidth(row, reader, layout);
                if (++count == limit) break;
            }
            return (count, columns.Length);
        });
    }

    /// <summary>Reads the first <paramref name="limit"/> rows (all when null) as a data set of <paramref name="classes"/> classes.</summary>
    /// <exception cref="InvalidDataException">A column is missing, a field is not a number, or a label is not a class index.</exception>
    public static DataSet Load(Layout layout, int? limit, int classes)
    {
        return Read(layout, (reader, columns) =>
        {
            int label = reader.Header.IndexOf(layout.Label);
            var inputs = new List<double>();
            var labels = new List<double>();
            var lines = new List<int>();
            foreach (var row in reader)
            {
                CheckWidth(row, reader, layout);
                labels.Add(Number(row, label, reader, layout));
                foreach (int c in columns) inputs.Add(Number(row, c, reader, layout));
                lines.Add(row.LineNumberFrom);
                if (labels.Count == limit) break;
            }
            if (labels.Count == 0) throw new InvalidDataException($"{layout.Path}: holds a header but no data rows");
            return FileData.Create(inputs.ToArray(), labels.ToArray(), labels.Count, columns.Length, classes, layout.Path, i => $"line {lines[i]}");
        });
    }

    private static T Read<T>(Layout layout, Func<SepReader, int[], T> read)
    {
        using var file = DataFile.OpenRead(layout.Path);
        SepReader reader;
        try
        {
            reader = new Sep(layout.Separator).Reader(o => o with { HasHeader = true, Unescape = true, DisableColCountCheck = true, CultureInfo = CultureInfo.InvariantCulture }).From(file);
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException or NotSupportedException)
        {
            throw new InvalidDataException($"{layout.Path}: line 1: not a readable CSV header: {e.Message}", e);
        }
        using (reader)
        {
            var names = reader.Header.ColNames;
            if (names.Count == 0) throw new InvalidDataException($"{layout.Path}: line 1: no header row (the first line must name the columns)");
            Column(names, layout.Label, layout, "label");
            var features = layout.Features is { } listed
                ? listed.Select(n => Column(names, n, layout, "feature")).ToArray()
                : Enumerable.Range(0, names.Count).Where(i => names[i] != layout.Label).ToArray();
            if (features.Length == 0) throw new InvalidDataException($"{layout.Path}: line 1: no feature column besides the label '{layout.Label}'");
            try
            {
                return read(reader, features);
            }
            catch (Exception e) when (e is not InvalidDataException && e is ArgumentException or FormatException or NotSupportedException)
            {
                throw new InvalidDataException($"{layout.Path}: {e.Message}", e);
            }
        }
    }

    private static int Column(IReadOnlyList<string> names, string name, Layout layout, string role)
    {
        for (int i = 0; i < names.Count; i++)
            if (names[i] == name) return i;
        throw new InvalidDataException($"{layout.Path}: line 1: no {role} column '{name}'; the header names: {string.Join(", ", names.Take(20))}{(names.Count > 20 ? ", ..." : "")}");
    }

    private static void CheckWidth(SepReader.Row row, SepReader reader, Layout layout)
    {
        if (row.ColCount != reader.Header.ColNames.Count)
            throw new InvalidDataException($"{layout.Path}: line {row.LineNumberFrom}: {row.ColCount} fields where the header has {reader.Header.ColNames.Count}");
    }

    private static double Number(SepReader.Row row, int column, SepReader reader, Layout layout)
    {
        var text = row[column].Span.Trim();
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v)) return v;
        string shown = text.Length <= 40 ? text.ToString() : text[..40].ToString() + "...";
        throw new InvalidDataException($"{layout.Path}: line {row.LineNumberFrom}, column '{reader.Header.ColNames[column]}': '{shown}' is not a finite number");
    }
}
