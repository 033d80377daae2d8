using System.Buffers.Binary;
using System.IO.Compression;
using Parity.Tests;

namespace Parity.Data.Tests;

public sealed class IdxReaderTests
{
    private static byte[] Idx(byte type, int[] dims, byte[] data)
    {
        var bytes = new List<byte> { 0, 0, type, (byte)dims.Length };
        var four = new byte[4];
        foreach (int d in dims)
        {
            BinaryPrimitives.WriteInt32BigEndian(four, d);
            bytes.AddRange(four);
        }
        bytes.AddRange(data);
        return [.. bytes];
    }

    private static byte[] Gzip(byte[] raw)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest)) gz.Write(raw);
        return ms.ToArray();
    }

    // Three 2x2 images with pixel values 0..11 and labels 7, 0, 9.
    private static readonly byte[] Pixels = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255];
    private static readonly byte[] Labels = [7, 0, 9];

    private static (string Images, string Labels) Write(TempDirectory dir, bool gzip, byte[]? images = null, byte[]? labels = null)
    {
        images ??= Idx(0x08, [3, 2, 2], Pixels);
        labels ??= Idx(0x08, [3], Labels);
        string ext = gzip ? ".gz" : "";
        File.WriteAllBytes(dir.File("images" + ext), gzip ? Gzip(images) : images);
        File.WriteAllBytes(dir.File("labels" + ext), gzip ? Gzip(labels) : labels);
        return (dir.File("images" + ext), dir.File("labels" + ext));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Raw_and_gzip_files_load_flattened_and_scaled_to_the_unit_interval(bool gzip)
    {
        using var dir = new TempDirectory();
        var (images, labels) = Write(dir, gzip);
        var set = IdxReader.Load(images, labels, limit: null, normalize: true);
        Assert.That((set.Count, set.Features, set.Classes), Is.EqualTo((3, 4, 10)));
        var all = set.All();
        Assert.That(all.Labels, Is.EqualTo(Labels));
        Assert.That(all.Inputs.Shape, Is.EqualTo(new[] { 3, 4 }));
        Assert.That(all.Inputs.Data, Is.EqualTo(Pixels.Select(p => (double)(p * (1f / 255f)))));
        Assert.That(all.Inputs.Data[^1], Is.EqualTo(1.0));
    }

    [Test]
    public void Gzip_is_detected_from_the_magic_bytes_not_the_name()
    {
        using var dir = new TempDirectory();
        File.WriteAllBytes(dir.File("images.idx"), Gzip(Idx(0x08, [3, 2, 2], Pixels)));
        File.WriteAllBytes(dir.File("labels.gz"), Idx(0x08, [3], Labels));
        var (dims, data) = IdxReader.ReadBytes(dir.File("images.idx"));
        Assert.That(dims, Is.EqualTo(new[] { 3, 2, 2 }));
        Assert.That(data, Is.EqualTo(Pixels));
        Assert.That(IdxReader.ReadBytes(dir.File("labels.gz")).Data, Is.EqualTo(Labels));
    }

    [Test]
    public void Without_normalization_pixels_keep_their_byte_values_and_the_limit_takes_the_first_samples()
    {
        using var dir = new TempDirectory();
        var (images, labels) = Write(dir, gzip: false);
        var set = IdxReader.Load(images, labels, limit: 2, normalize: false);
        Assert.That(set.Count, Is.EqualTo(2));
        Assert.That(set.All().Inputs.Data, Is.EqualTo(Pixels.Take(8).Select(p => (double)p)));
        Assert.That(set.All().Labels, Is.EqualTo(new[] { 7, 0 }));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void A_truncated_file_says_what_is_missing(bool gzip)
    {
        using var dir = new TempDirectory();
        var full = Idx(0x08, [3, 2, 2], Pixels);
        var (images, labels) = Write(dir, gzip, images: full[..^3]);
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.Load(images, labels, null, true))!;
        Assert.That(e.Message, Does.StartWith(images + ": file ends before 12 data bytes"));

        File.WriteAllBytes(images, full[..6]);
        Assert.That(Assert.Throws<InvalidDataException>(() => IdxReader.ReadBytes(images))!.Message, Is.EqualTo(images + ": file ends before dimension 0"));
        File.WriteAllBytes(images, []);
        Assert.That(Assert.Throws<InvalidDataException>(() => IdxReader.ReadBytes(images))!.Message, Is.EqualTo(images + ": file ends before the magic number"));
    }

    [Test]
    public void A_header_that_claims_more_data_than_the_file_holds_fails_before_allocating_it()
    {
        using var dir = new TempDirectory();
        var (images, _) = Write(dir, gzip: false, images: Idx(0x08, [60000, 1000, 30], Pixels));
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadBytes(images))!;
        Assert.That(e.Message, Is.EqualTo(images + ": file ends before 1800000000 data bytes (12 present)"));
    }

    [Test]
    public void A_corrupt_gzip_stream_is_invalid_data()
    {
        using var dir = new TempDirectory();
        var gz = Gzip(Idx(0x08, [3, 2, 2], Pixels));
        for (int i = 10; i < gz.Length - 8; i++) gz[i] ^= 0x5a;
        File.WriteAllBytes(dir.File("bad.gz"), gz);
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadBytes(dir.File("bad.gz")))!;
        Assert.That(e.Message, Does.StartWith(dir.File("bad.gz") + ": "));
    }

    [Test]
    public void A_file_that_is_not_idx_names_its_magic_bytes()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("x.idx"), "P5\n28 28\n255\n");
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadBytes(dir.File("x.idx")))!;
        Assert.That(e.Message, Is.EqualTo(dir.File("x.idx") + ": not an IDX file (magic bytes 5035, expected 0000)"));
    }

    [Test]
    public void An_element_type_other_than_unsigned_byte_is_rejected()
    {
        using var dir = new TempDirectory();
        File.WriteAllBytes(dir.File("f.idx"), Idx(0x0D, [1], [0, 0, 0, 0]));
        Assert.That(Assert.Throws<InvalidDataException>(() => IdxReader.ReadBytes(dir.File("f.idx")))!.Message,
            Does.EndWith("IDX element type 0x0d is not unsigned byte (0x08)"));
    }

    [Test]
    public void Image_and_label_counts_must_agree()
    {
        using var dir = new TempDirectory();
        var (images, labels) = Write(dir, gzip: true, labels: Idx(0x08, [2], [1, 2]));
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.Load(images, labels, null, true))!;
        Assert.That(e.Message, Is.EqualTo($"{images} has 3 images but {labels} has 2 labels"));
    }

    [Test]
    public void Labels_must_be_rank_one_and_within_the_classes()
    {
        using var dir = new TempDirectory();
        var (images, labels) = Write(dir, gzip: false, labels: Idx(0x08, [3, 1], Labels));
        Assert.That(Assert.Throws<InvalidDataException>(() => IdxReader.Load(images, labels, null, true))!.Message,
            Is.EqualTo($"{labels}: labels must be rank 1, got rank 2"));
        (images, labels) = Write(dir, gzip: false, labels: Idx(0x08, [3], [1, 12, 3]));
        Assert.That(Assert.Throws<InvalidDataException>(() => IdxReader.Load(images, labels, null, true))!.Message,
            Is.EqualTo($"{labels}: label 12 of sample 1 is outside 0..9"));
    }

    [Test]
    public void A_missing_file_is_file_not_found_naming_it()
    {
        var e = Assert.Throws<FileNotFoundException>(() => IdxReader.ReadBytes("/nonexistent/train-images-idx3-ubyte.gz"))!;
        Assert.That(e.Message, Does.Contain("/nonexistent/train-images-idx3-ubyte.gz"));
    }

    [Test]
    public void A_directory_is_named_as_a_directory_not_as_a_missing_file()
    {
        using var dir = new TempDirectory();
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadBytes(dir.Path))!;
        Assert.That(e.Message, Is.EqualTo($"{dir.Path} is a directory, not a file"));
    }

    [Test]
    public void A_gzip_header_that_claims_more_than_deflate_can_expand_to_is_refused_before_decompressing()
    {
        using var dir = new TempDirectory();
        File.WriteAllBytes(dir.File("x.gz"), Gzip(Idx(0x08, [60000, 1000, 30], Pixels)));
        var e = Assert.Throws<InvalidDataException>(() => IdxReader.ReadBytes(dir.File("x.gz")))!;
        Assert.That(e.Message, Does.Contain("the header claims 1800000000 data bytes, more than a gzip file of"));
    }

    [Test]
    public void A_limit_reads_only_the_samples_it_keeps()
    {
        // A gzip file cut after the second image: with limit 2 nothing past it is read.
        using var dir = new TempDirectory();
        var (images, labels) = Write(dir, gzip: true);
        var cut = Gzip(Idx(0x08, [3, 2, 2], Pixels[..8]));
        File.WriteAllBytes(images, cut);
        var set = IdxReader.Load(images, labels, limit: 2, normalize: false);
        Assert.That(set.All().Inputs.Data, Is.EqualTo(Pixels.Take(8).Select(p => (double)p)));
        Assert.That(IdxReader.Shape(images, labels, limit: 2), Is.EqualTo((2, 4)));
        Assert.That(() => IdxReader.Load(images, labels, limit: null, normalize: false), Throws.InstanceOf<InvalidDataException>().With.Message.Contains("file ends before 12 data bytes"));
    }

    [Test]
    public void The_real_fashion_mnist_files_load_as_60000_and_10000_images_of_784_pixels()
    {
        string dir = Planning.Planner.FashionMnistDirectory;
        if (!File.Exists(Path.Combine(dir, "train-labels-idx1-ubyte.gz")))
            Assert.Ignore($"Fashion-MNIST is not installed under {dir} (Debian package dataset-fashion-mnist; scripts/setup installs it)");
        foreach (var (prefix, count) in new[] { ("train", 60000), ("t10k", 10000) })
        {
            var set = IdxReader.Load(Path.Combine(dir, $"{prefix}-images-idx3-ubyte.gz"), Path.Combine(dir, $"{prefix}-labels-idx1-ubyte.gz"), null, true);
            Assert.That((set.Count, set.Features, set.Classes), Is.EqualTo((count, 784, 10)));
            var (_, labels) = IdxReader.ReadBytes(Path.Combine(dir, $"{prefix}-labels-idx1-ubyte.gz"));
            Assert.That(labels.Distinct().Order(), Is.EqualTo(Enumerable.Range(0, 10).Select(i => (byte)i)));
            var first = set.Gather([0]);
            Assert.That(first.Inputs.Data, Is.All.InRange(0.0, 1.0));
            Assert.That(first.Inputs.Data.Max(), Is.GreaterThan(0.5), "an image, not a blank");
        }
    }
}
