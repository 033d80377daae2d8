using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Parity.Randomness;

namespace Parity.Specs.Tests;

/// <summary>A spec file's bytes made to break something, with the kind of attack it is.</summary>
internal sealed record HostileSpec(string Category, string Name, byte[] Bytes);

/// <summary>
/// Seeded hostile spec files in the categories of a probe of the CLI: truncations, wrong types, huge and odd numbers,
/// NaN and Infinity, deep nesting, duplicate keys, unknown names, Unicode and encodings (surrogates, invalid UTF-8,
/// byte-order marks, UTF-16 and UTF-32), empty and binary files, deletions, semantic changes, byte flips, splices of
/// two specs, resource bombs (sizes at and past the limits) and hostile names and paths. Shared by the in-process fuzz
/// test (tests/Parity.Core.Tests) and the CLI's (tests/Parity.Cli.Tests), which link this file.
/// </summary>
internal static partial class HostileSpecs
{
    /// <summary>Every category, in generation order.</summary>
    public static readonly string[] Categories =
    [
        "truncation", "wrong-type", "odd-number", "nan-infinity", "deep-nesting", "duplicate-key", "unknown-name", "unicode",
        "empty-binary", "deletion", "semantic", "byte-flip", "splice", "resource-bomb", "path-name",
    ];

    /// <summary>
    /// <paramref name="perCategory"/> specs of every category from <paramref name="sources"/> (name, text; the first must be a
    /// small synthetic spec such as synthetic-mlp-bn). Path attacks name <paramref name="fifo"/> (a named pipe),
    /// <paramref name="directory"/> (a directory) and <paramref name="fifoTrace"/> (a directory whose trace.json is a named pipe).
    /// </summary>
    public static List<HostileSpec> Generate(IReadOnlyList<(string Name, string Text)> sources, int perCategory, ulong seed,
        string fifo, string directory, string fifoTrace)
    {
        var specs = new List<HostileSpec>();
        foreach (string category in Categories)
        {
            var rng = ParityRandom.Derive(seed, "hostile/" + category);
            for (int i = 0; i < perCategory; i++)
            {
                var (name, text) = sources[rng.NextInt(sources.Count)];
                var bytes = category switch
                {
                    "truncation" => Utf8(text[..rng.NextInt(text.Length)]),
                    "wrong-type" => Utf8(SpecMutations.MutateTree(text, rng, 1)),
                    "odd-number" => Utf8(SpecMutations.MutateTree(text, rng, 2)),
                    "nan-infinity" => Utf8(ReplaceNumber(text, rng, ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "0x10", "+1", ".5", "1.", "01"])),
                    "deep-nesting" => Utf8(rng.NextInt(3) == 0 ? DeepDocument(rng) : SpecMutations.MutateTree(text, rng, 4)),
                    "duplicate-key" => Utf8(SpecMutations.MutateTree(text, rng, 5)),
                    "unknown-name" => Utf8(SpecMutations.MutateTree(text, rng, rng.NextInt(3) switch { 0 => 3, 1 => 6, _ => 9 })),
                    "unicode" => Unicode(text, rng),
                    "empty-binary" => EmptyOrBinary(rng),
                    "deletion" => Utf8(SpecMutations.MutateTree(text, rng, 0)),
                    "semantic" => Utf8(Semantic(sources[0].Text, text, rng)),
                    "byte-flip" => FlipBytes(Utf8(text), rng),
                    "splice" => Splice(text, sources[rng.NextInt(sources.Count)].Text, rng),
                    "resource-bomb" => Utf8(Bombs[i % Bombs.Length]),
                    _ => Utf8(PathAttack(sources[0].Text, i, fifo, directory, fifoTrace)),
                };
                specs.Add(new HostileSpec(category, $"{category} {i} ({name})", bytes));
            }
        }
        return specs;
    }

    /// <summary>
    /// A gzip IDX file of unsigned bytes with the given dimensions and that many zero data bytes: with dims
    /// [1000000, 28, 28], 762 KB that expand to 784 MB (the decompression bomb of the probe).
    /// </summary>
    public static void WriteGzipIdx(string path, int[] dims, long zeros)
    {
        using var file = File.Create(path);
        using var gz = new GZipStream(file, CompressionLevel.Fastest);
        gz.Write([0, 0, 8, (byte)dims.Length]);
        var four = new byte[4];
        foreach (int d in dims)
        {
            BinaryPrimitives.WriteInt32BigEndian(four, d);
            gz.Write(four);
        }
        var block = new byte[1 << 20];
        for (long left = zeros; left > 0; left -= block.Length) gz.Write(block, 0, (int)Math.Min(block.Length, left));
    }

    /// <summary>A named pipe at <paramref name="path"/> (mkfifo), or the calling test is ignored where there are none.</summary>
    public static string MakeFifo(string path)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) Assert.Ignore("named pipes in the file system are a Unix feature");
        using var mkfifo = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("mkfifo", [path]) { UseShellExecute = false })!;
        mkfifo.WaitForExit();
        Assert.That(mkfifo.ExitCode, Is.EqualTo(0), $"mkfifo {path}");
        return path;
    }

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    [GeneratedRegex(@"(?<=:\s*)-?\d+(\.\d+)?([eE][+-]?\d+)?")]
    private static partial Regex NumberValue();

    private static string ReplaceNumber(string text, ParityRandom rng, string[] replacements)
    {
        var numbers = NumberValue().Matches(text);
        if (numbers.Count == 0) return text;
        var m = numbers[rng.NextInt(numbers.Count)];
        return text[..m.Index] + replacements[rng.NextInt(replacements.Length)] + text[(m.Index + m.Length)..];
    }

    private static string DeepDocument(ParityRandom rng)
    {
        int depth = 60 + rng.NextInt(20_000);
        return rng.NextInt(2) == 0
            ? new string('[', depth) + new string(']', depth)
            : "{\"name\": " + string.Concat(Enumerable.Repeat("{\"a\": ", depth)) + "1" + new string('}', depth) + "}";
    }

    private static byte[] Unicode(string text, ParityRandom rng)
    {
        // Invalid UTF-8: stray continuation, overlong '/', an encoded surrogate, a 5-byte form, a truncated sequence.
        byte[][] invalid = [[0xFF, 0xFE], [0x80], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xE2, 0x82]];
        var utf8 = Utf8(text);
        int quote = Math.Max(0, text.IndexOf("\"name\"", StringComparison.Ordinal) + 9);
        switch (rng.NextInt(10))
        {
            case 0: return [.. utf8[..quote], .. invalid[rng.NextInt(invalid.Length)], .. utf8[quote..]];
            case 1: return [0xEF, 0xBB, 0xBF, .. utf8];
            case 2: return [0xEF, 0xBB, 0xBF, 0xEF, 0xBB, 0xBF, .. utf8];
            case 3: return [0xFF, 0xFE, .. Encoding.Unicode.GetBytes(text)];
            case 4: return [0xFE, 0xFF, .. Encoding.BigEndianUnicode.GetBytes(text)];
            case 5: return Encoding.Unicode.GetBytes(text);
            case 6: return [0xFF, 0xFE, 0x00, 0x00, .. new UTF32Encoding(false, false).GetBytes(text)];
            case 7: return [.. utf8[..quote], 0x00, .. utf8[quote..]];
            case 8: return Utf8(text[..quote] + "\u202E\uFEFF\u200B" + text[quote..]);
            default: return Utf8(SpecMutations.Mutant(text, rng));
        }
    }

    private static byte[] EmptyOrBinary(ParityRandom rng)
    {
        string[] trivial = ["", " ", "\n", "{}", "[]", "null", "0", "\"spec\"", "{\"name\": \"x\"}", "{,}", "\0\0\0\0"];
        int pick = rng.NextInt(trivial.Length + 3);
        if (pick < trivial.Length) return Utf8(trivial[pick]);
        var bytes = new byte[1 + rng.NextInt(4096)];
        for (int i = 0; i < bytes.Length; i++) bytes[i] = (byte)rng.NextInt(256);
        return bytes;
    }

    private static byte[] FlipBytes(byte[] bytes, ParityRandom rng)
    {
        int flips = 1 + rng.NextInt(4);
        for (int f = 0; f < flips && bytes.Length > 0; f++) bytes[rng.NextInt(bytes.Length)] ^= (byte)(1 + rng.NextInt(255));
        return bytes;
    }

    private static byte[] Splice(string a, string b, ParityRandom rng) => Utf8(a[..rng.NextInt(a.Length)] + b[rng.NextInt(b.Length)..]);

    // Plausible specs that are wrong together: widths, classes, batch sizes, schedules and limits that each pass the loader.
    private static string Semantic(string synthetic, string text, ParityRandom rng)
    {
        if (rng.NextInt(3) == 0) return SpecMutations.MutateTree(text, rng, rng.NextInt(2) == 0 ? 7 : 8);
        var root = JsonNode.Parse(synthetic)!.AsObject();
        var data = root["data"]!.AsObject();
        int samples = (int)data["train"]!["samples"]!;
        switch (rng.NextInt(10))
        {
            case 0: data["batchSize"] = samples + 1; break;
            case 1: root["model"]!["inputs"] = 21; break;
            case 2: data["train"]!["classes"] = 6; break;
            case 3: data["eval"]!["features"] = 19; break;
            case 4: data["evalLimit"] = 1; break;
            case 5: root["training"] = JsonNode.Parse("""{ "epochs": 1000000 }"""); break;
            case 6: root["evaluation"] = JsonNode.Parse("""{ "every": 1, "batchSize": 1 }"""); break;
            case 7: root["capture"] = JsonNode.Parse("""{ "steps": { "first": 0, "last": false }, "kinds": [] }"""); break;
            case 8: root["init"] = JsonNode.Parse("""{ "mode": "framework", "from": "x" }"""); break;
            default: data["batchSize"] = samples; data["shuffle"] = false; break;
        }
        return root.ToJsonString();
    }

    // JSON written with single quotes, for legibility.
    private static string J(string text) => text.Replace('\'', '"');

    private const string TowerHead = "{'name':'bomb','model':{'inputs':1,'layers':[{'name':'l1','type':'linear','in':1,'out':65536},{'name':'r','type':'relu'},"
        + "{'name':'l2','type':'linear','in':65536,'out':2}],'calls':";

    private static string Wide(int batch) => J("{'name':'bomb','model':{'inputs':1,'layers':[{'name':'l1','type':'linear','in':1,'out':65536},"
        + "{'name':'l2','type':'linear','in':65536,'out':2}],'calls':['l1','l2']},'optimizer':{'type':'sgd','lr':0.01},"
        + $"'data':{{'train':{{'type':'synthetic','generator':'gaussian','samples':{batch},'features':1,'classes':2}},'batchSize':{batch}}},'training':{{'steps':1}}}}");

    private static string Tower(int relus) => J(TowerHead + "['l1'," + string.Join(",", Enumerable.Repeat("'r'", relus)) + ",'l2']},'optimizer':{'type':'sgd','lr':0.01},"
        + "'data':{'train':{'type':'synthetic','generator':'gaussian','samples':600,'features':1,'classes':2},'batchSize':512},'training':{'steps':1}}");

    // The sizes of the probe: int32 overflow of batch x width, 2^31 elements, ~100 GB and ~12 GB of activations, an eval set
    // of 10^7 samples, the epochs limit, a teacher past its limit, too many calls, a layer past the weight limit.
    private static readonly string[] Bombs =
    [
        Wide(65537), Tower(200), Wide(32768), Tower(22), Wide(1048576),
        J("{'name':'evalbomb','model':{'inputs':16,'layers':[{'name':'l1','type':'linear','in':16,'out':128},{'name':'l2','type':'linear','in':128,'out':2}],'calls':['l1','l2']},"
            + "'optimizer':{'type':'sgd','lr':0.01},'data':{'train':{'type':'synthetic','generator':'gaussian','samples':100,'features':16,'classes':2},"
            + "'eval':{'type':'synthetic','generator':'gaussian','samples':10000000,'features':16,'classes':2},'batchSize':10},'training':{'steps':1}}"),
        J("{'name':'epochs','model':{'inputs':2,'layers':[{'name':'l1','type':'linear','in':2,'out':2}],'calls':['l1']},'optimizer':{'type':'sgd','lr':0.01},"
            + "'data':{'train':{'type':'synthetic','generator':'gaussian','samples':400,'features':2,'classes':2},'batchSize':1},'training':{'epochs':1000000},'evaluation':{'every':1}}"),
        J("{'name':'teacher','model':{'inputs':4096,'layers':[{'name':'l1','type':'linear','in':4096,'out':2}],'calls':['l1']},'optimizer':{'type':'sgd','lr':0.01},"
            + "'data':{'train':{'type':'synthetic','generator':'teacher','samples':10000000,'features':4096,'classes':2},'batchSize':1},'training':{'steps':1}}"),
        J("{'name':'calls','model':{'inputs':2,'layers':[{'name':'r','type':'relu'},{'name':'l1','type':'linear','in':2,'out':2}],'calls':["
            + string.Join(",", Enumerable.Repeat("'r'", 10001)) + ",'l1']},'optimizer':{'type':'sgd','lr':0.01},"
            + "'data':{'train':{'type':'synthetic','samples':4,'features':2,'classes':2},'batchSize':1},'training':{'steps':1}}"),
        J("{'name':'params','model':{'inputs':65536,'layers':[{'name':'l1','type':'linear','in':65536,'out':65536}],'calls':['l1']},'optimizer':{'type':'adam'},"
            + "'data':{'train':{'type':'synthetic','generator':'gaussian','samples':1,'features':65536,'classes':65536},'batchSize':1},'training':{'steps':1}}"),
    ];

    // Most telling first: a short sample still gets the escapes, the pipes and the crash of the probe.
    private static string PathAttack(string synthetic, int i, string fifo, string directory, string fifoTrace)
    {
        JsonObject Idx(string images, string labels) => new() { ["type"] = "idx", ["images"] = images, ["labels"] = labels };
        JsonObject From(string from) => new() { ["mode"] = "injected", ["from"] = from };
        (string Key, Func<JsonNode> Value)[] attacks =
        [
            ("name", () => ".."), ("train", () => Idx(fifo, fifo)), ("init", () => From(fifoTrace)), ("name", () => "a\u0000b"),
            ("name", () => "../../escaped"), ("train", () => Idx(directory, directory)), ("name", () => "/tmp/parity-abs/dir"),
            ("name", () => new string('\u6771', 200)), ("name", () => "."), ("train", () => Idx("/dev/zero", "/dev/zero")),
            ("name", () => "\u001b]0;pwned\u0007\u001b[2J"), ("train", () => Idx("/etc/passwd", "/etc/passwd")), ("name", () => "x\nverdict: agree\nreport: /fake"),
            ("train", () => Idx("/proc/self/mem", "/dev/urandom")), ("init", () => From("/")), ("name", () => "a/b"), ("train", () => Idx("fashion-mnist:../../..", "/")),
            ("init", () => From("..")), ("name", () => "-rf"), ("init", () => From(fifo)), ("train", () => Idx("", "x")), ("init", () => From(directory)),
        ];
        var root = JsonNode.Parse(synthetic)!.AsObject();
        var (key, value) = attacks[i % attacks.Length];
        switch (key)
        {
            case "name": root["name"] = value(); break;
            case "train": root["data"]!["train"] = value(); break;
            default: root["init"] = value(); break;
        }
        return root.ToJsonString();
    }
}
