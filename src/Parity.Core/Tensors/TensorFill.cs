using System.Runtime.ExceptionServices;

namespace Parity.Tensors;

/// <summary>
/// Values still being copied into tensors that were already handed out, so that a backend can give its record back
/// while the copy runs beside its next step. Reading a filling tensor's <see cref="Tensor.Data"/> waits for the copy;
/// releasing it gives its array back to the pool once the copy is done. The copy runs on the thread pool, or on the
/// first thread that waits for it before a pool thread took it, so a busy pool delays nothing.
/// </summary>
public sealed class TensorFill
{
    private readonly double[][] _targets;
    private readonly Action<int, double[]> _copy;
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<double[]> _releasedEarly = [];
    private readonly Lock _gate = new();
    private int _claimed;
    private bool _finished;
    private ExceptionDispatchInfo? _failure;

    private TensorFill(double[][] targets, Action<int, double[]> copy)
    {
        _targets = targets;
        _copy = copy;
    }

    /// <summary>
    /// Starts filling <paramref name="tensors"/>: <paramref name="copy"/> is called once for each, with its index and its
    /// array, and must write every element of that array (through the array, never through the tensor, whose
    /// <see cref="Tensor.Data"/> waits for this fill). The tensors may be handed out as soon as this returns.
    /// </summary>
    public static TensorFill Start(IReadOnlyList<Tensor> tensors, Action<int, double[]> copy)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(copy);
        var fill = new TensorFill([.. tensors.Select(t => t.Data)], copy);
        foreach (var t in tensors) t.FillsFrom(fill);
        ThreadPool.UnsafeQueueUserWorkItem(static f => f.RunUnlessClaimed(), fill, preferLocal: false);
        return fill;
    }

    /// <summary>True once every tensor is filled (or the copy failed).</summary>
    public bool IsDone => _done.Task.IsCompleted;

    /// <summary>Waits until every tensor is filled, running the copy here when no pool thread has taken it yet; rethrows its failure.</summary>
    public void Wait()
    {
        if (!RunUnlessClaimed()) _done.Task.Wait();
        _failure?.Throw();
    }

    /// <summary>Gives <paramref name="array"/> (a released tensor's) back to the pool once the copy into it is done.</summary>
    internal void ReturnWhenDone(double[] array)
    {
        lock (_gate)
        {
            if (!_finished)
            {
                _releasedEarly.Add(array);
                return;
            }
        }
        TensorPool.Shared.Return(array);
    }

    /// <summary>Runs the copy unless another thread claimed it; true when this thread ran it.</summary>
    private bool RunUnlessClaimed()
    {
        if (Interlocked.Exchange(ref _claimed, 1) != 0) return false;
        try
        {
            for (int i = 0; i < _targets.Length; i++) _copy(i, _targets[i]);
        }
        catch (Exception e)
        {
            _failure = ExceptionDispatchInfo.Capture(e);
        }
        List<double[]> released;
        lock (_gate)
        {
            _finished = true;
            released = [.. _releasedEarly];
            _releasedEarly.Clear();
        }
        _done.SetResult();
        foreach (var array in released) TensorPool.Shared.Return(array);
        return true;
    }
}
