using Parity.Tracing;

namespace Parity.Tensors.Tests;

public sealed class TensorPoolTests
{
    // Lengths no other test of this assembly rents, so that what the pool hands out is what these tests gave back.
    private const int Rows = 37, Cols = 101; // 3,737 values, above TensorPool.MinLength

    private static Tensor Captured(float start) =>
        Tensor.FromFloats(Enumerable.Range(0, Rows * Cols).Select(i => start + i).ToArray(), [Rows, Cols]);

    [Test]
    public void AReleasedRecordGivesItsArraysBackAndTheNextRentGetsTheSameArray()
    {
        var tensor = Captured(1);
        var array = tensor.Data;
        var record = new StepRecord(1, RecordPhase.Train).Add(TensorKind.Forward, "l1", tensor);
        record.Release();
        Assert.That(TensorPool.Shared.Rent(Rows * Cols), Is.SameAs(array));
    }

    [Test]
    public void AWriterHandedARecordWritesWhatACopyingWriteWritesAndThenReleasesTheRecord()
    {
        using var dir = new Parity.Tests.TempDirectory();
        var header = new TraceHeader { Backend = "reference-f32", DType = "float32", Scenario = "pool", SpecHash = "0123456789abcdef" };
        StepRecord Record() => new StepRecord(1, RecordPhase.Train).Add(TensorKind.Forward, "l1", Captured(4)).AddScalar(TensorKind.Loss, 0.25, DType.Float32);
        var owned = Record();
        var tensor = owned.Entries[0].Value;
        foreach (var (name, write) in new (string, Action<TraceWriter>)[] { ("owned", w => w.WriteOwned(owned)), ("copied", w => w.Write(Record())) })
        {
            using var writer = TraceWriter.Create(Path.Combine(dir.Path, name), header);
            write(writer);
            writer.Flush();
        }
        Assert.That(owned.IsReleased && tensor.IsReleased, Is.True, "the writer releases a record handed to it once written");
        foreach (var file in new[] { TraceFiles.Tensors, TraceFiles.Records })
            Assert.That(File.ReadAllBytes(Path.Combine(dir.Path, "owned", file)), Is.EqualTo(File.ReadAllBytes(Path.Combine(dir.Path, "copied", file))), file);
    }

    [Test]
    public void AReleasedRecordAndItsPooledTensorsThrowWhenRead()
    {
        var tensor = Captured(2);
        var record = new StepRecord(3, RecordPhase.Train).Add(TensorKind.Forward, "l1", tensor).AddScalar(TensorKind.Loss, 0.5, DType.Float32);
        record.Release();
        Assert.That(record.IsReleased, Is.True);
        Assert.That(tensor.IsReleased, Is.True);
        Assert.Throws<ObjectDisposedException>(() => _ = record.Entries);
        Assert.Throws<ObjectDisposedException>(() => record.Find(TensorKind.Loss));
        Assert.Throws<ObjectDisposedException>(() => record.Add(TensorKind.Loss, "", Tensor.Scalar(1, DType.Float32)));
        var e = Assert.Throws<ObjectDisposedException>(() => _ = tensor.Data);
        Assert.That(e!.Message, Does.Contain("[37,101]").And.Contain("released"));
    }

    [Test]
    public void ATensorOverTheCallersOwnArrayStaysReadableWhenItsRecordIsReleased()
    {
        var data = new double[Rows * Cols];
        data[5] = 7;
        var tensor = new Tensor([Rows, Cols], data, DType.Float64);
        new StepRecord(1, RecordPhase.Train).Add(TensorKind.Forward, "l1", tensor).Release();
        Assert.That(tensor.IsReleased, Is.False);
        Assert.That(tensor.Data, Is.SameAs(data));
        Assert.That(TensorPool.Shared.Rent(Rows * Cols), Is.Not.SameAs(data), "the caller's array is not the pool's to lend");
    }

    [Test]
    public void ATensorSharedByTwoRecordsGoesBackOnceAndReleasingTwiceDoesNothing()
    {
        var tensor = Captured(3);
        var array = tensor.Data;
        var backend = new StepRecord(1, RecordPhase.Train).Add(TensorKind.Forward, "l1", tensor);
        var canonical = new StepRecord(1, RecordPhase.Train).Add(TensorKind.Forward, "l1", tensor);
        canonical.Release();
        canonical.Release();
        backend.Release();
        Assert.That(TensorPool.Shared.Rent(Rows * Cols), Is.SameAs(array));
        Assert.That(TensorPool.Shared.Rent(Rows * Cols), Is.Not.SameAs(array), "the array went back once, so it is lent once");
    }

    [Test]
    public void GivingTheSameArrayBackTwiceIsRejected()
    {
        var array = TensorPool.Shared.Rent(Rows * Cols + 1);
        TensorPool.Shared.Return(array);
        var e = Assert.Throws<InvalidOperationException>(() => TensorPool.Shared.Return(array));
        Assert.That(e!.Message, Does.Contain("twice"));
        Assert.That(TensorPool.Shared.Rent(Rows * Cols + 1), Is.SameAs(array));
    }

    [Test]
    public void ShortArraysAreNotKept()
    {
        var tensor = Tensor.FromDoubles([1.0, 2.0, 3.0], [3]);
        var array = tensor.Data;
        new StepRecord(1, RecordPhase.Train).Add(TensorKind.Forward, "l1", tensor).Release();
        Assert.That(tensor.IsReleased, Is.True, "a pooled tensor is released whatever its length");
        Assert.That(TensorPool.Shared.Rent(3), Is.Not.SameAs(array));
    }

    [Test]
    public void CopiesAreExactWhateverTheSourceTypeAndDoNotDependOnWhatTheRentedArrayHeld()
    {
        var stale = TensorPool.Shared.Rent(Rows * Cols + 2);
        Array.Fill(stale, double.NaN);
        TensorPool.Shared.Return(stale);
        float[] floats = [.. Enumerable.Range(0, Rows * Cols + 2).Select(i => i * 0.1f)];
        var widened = Tensor.FromFloats(floats, [Rows * Cols + 2]);
        Assert.That(widened.Data, Is.SameAs(stale));
        Assert.That(widened.Data, Is.EqualTo(floats.Select(f => (double)f)));
        Assert.That(widened.DType, Is.EqualTo(DType.Float32));
        double[] doubles = [.. Enumerable.Range(0, Rows * Cols + 2).Select(i => i / 3.0)];
        var copied = Tensor.Copied<double>(doubles, [Rows * Cols + 2], DType.Float64);
        Assert.That(copied.Data, Is.EqualTo(doubles));
        Assert.That(copied.Data, Is.Not.SameAs(doubles));
        Assert.Throws<ArgumentException>(() => Tensor.FromFloats(floats, [Rows, Cols]), "too many values for the shape");
        Assert.Throws<ArgumentException>(() => Tensor.FromFloats(floats.AsSpan(0, 10), [Rows * Cols + 2]), "too few: the rest would be stale");
    }

    [Test]
    public void APoolKeepsNoMoreThanItsCapacity()
    {
        var pool = new TensorPool(capacityBytes: 3 * 2048 * sizeof(double));
        var arrays = Enumerable.Range(0, 4).Select(_ => pool.Rent(2048)).ToList();
        foreach (var a in arrays) pool.Return(a);
        Assert.That(pool.KeptBytes, Is.EqualTo(3 * 2048 * sizeof(double)));
        var lent = Enumerable.Range(0, 4).Select(_ => pool.Rent(2048)).ToList();
        Assert.That(lent.Take(3), Is.EqualTo(arrays.Take(3).Reverse()).Using<double[]>(ReferenceEquals), "the last given back is lent first");
        Assert.That(arrays, Has.None.SameAs(lent[3]), "the fourth array was beyond the capacity and is not kept");
        Assert.That(pool.KeptBytes, Is.Zero);
        Assert.That(TensorPool.Shared.CapacityBytes, Is.InRange(1L, 1L << 30));
    }
}
