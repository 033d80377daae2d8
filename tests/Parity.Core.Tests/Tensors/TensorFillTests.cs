using Parity.Tracing;

namespace Parity.Tensors.Tests;

public sealed class TensorFillTests
{
    // A length no other test of this assembly rents, so that what the pool hands out is what these tests gave back.
    private const int Length = 4099;

    private static double Value(int tensor, int i) => tensor * 10_000 + i + 0.5;

    /// <summary>A fill of <paramref name="count"/> pooled tensors whose copy waits for <paramref name="gate"/> before writing.</summary>
    private static (Tensor[] Tensors, TensorFill Fill) Filling(int count, ManualResetEventSlim gate)
    {
        Tensor[] tensors = [.. Enumerable.Range(0, count).Select(_ => Tensor.Pooled([Length], DType.Float32))];
        var fill = TensorFill.Start(tensors, (t, target) =>
        {
            gate.Wait();
            for (int i = 0; i < target.Length; i++) target[i] = Value(t, i);
        });
        return (tensors, fill);
    }

    [Test]
    public void Reading_a_filling_tensor_waits_for_its_values()
    {
        using var gate = new ManualResetEventSlim(false);
        var (tensors, fill) = Filling(3, gate);
        var read = Task.Run(() => tensors[2].Data[Length - 1]);
        Assert.That(read.Wait(TimeSpan.FromMilliseconds(200)), Is.False, "a read returned before the copy was let through");
        Assert.That(fill.IsDone, Is.False);
        gate.Set();
        Assert.That(read.Result, Is.EqualTo(Value(2, Length - 1)));
        for (int t = 0; t < tensors.Length; t++)
            Assert.That(tensors[t].Data, Is.EqualTo(Enumerable.Range(0, Length).Select(i => Value(t, i))), $"tensor {t}");
        Assert.That(fill.IsDone, Is.True);
    }

    [Test]
    public void Shape_and_length_do_not_wait()
    {
        using var gate = new ManualResetEventSlim(false);
        var (tensors, _) = Filling(1, gate);
        Assert.That(tensors[0].Length, Is.EqualTo(Length));
        Assert.That(tensors[0].ShapeText, Is.EqualTo($"[{Length}]"));
        gate.Set();
    }

    [Test]
    public void A_tensor_released_while_filling_goes_back_to_the_pool_only_once_filled()
    {
        using var gate = new ManualResetEventSlim(false);
        var (tensors, fill) = Filling(1, gate);
        var record = new StepRecord(1, RecordPhase.Train).Add(TensorKind.Forward, "l1", tensors[0]);
        record.Release();
        Assert.That(tensors[0].IsReleased, Is.True);
        var rentedMeanwhile = TensorPool.Shared.Rent(Length);
        gate.Set();
        fill.Wait();
        var rentedAfter = TensorPool.Shared.Rent(Length);
        Assert.That(rentedAfter, Is.Not.SameAs(rentedMeanwhile), "the filling array was lent out while the copy still wrote it");
        Assert.That(rentedAfter, Is.EqualTo(Enumerable.Range(0, Length).Select(i => Value(0, i))), "the array given back after the copy holds its values");
    }

    [Test]
    public void A_failed_copy_is_thrown_to_whoever_reads()
    {
        var tensor = Tensor.Pooled([Length], DType.Float64);
        var fill = TensorFill.Start([tensor], (_, _) => throw new InvalidOperationException("the source went away"));
        var e = Assert.Throws<InvalidOperationException>(() => _ = tensor.Data);
        Assert.That(e!.Message, Is.EqualTo("the source went away"));
        Assert.Throws<InvalidOperationException>(fill.Wait);
    }
}
