using Engine.Layers;

namespace Engine.Training;

/// <summary>Several observers of one training run, called in order.</summary>
public sealed class ObserverList(params ITrainingObserver?[] observers) : ITrainingObserver
{
    private readonly ITrainingObserver[] _observers = observers.OfType<ITrainingObserver>().ToArray();

    /// <inheritdoc/>
    public void OnBatch(in BatchReport report)
    {
        foreach (ITrainingObserver o in _observers)
        {
            o.OnBatch(report);
        }
    }

    /// <inheritdoc/>
    public void OnGradients(Sequential network)
    {
        foreach (ITrainingObserver o in _observers)
        {
            o.OnGradients(network);
        }
    }

    /// <inheritdoc/>
    public void OnStep(Sequential network)
    {
        foreach (ITrainingObserver o in _observers)
        {
            o.OnStep(network);
        }
    }

    /// <inheritdoc/>
    public void OnEpoch(in EpochReport report)
    {
        foreach (ITrainingObserver o in _observers)
        {
            o.OnEpoch(report);
        }
    }
}
