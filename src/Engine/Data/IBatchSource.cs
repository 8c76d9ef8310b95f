namespace Engine.Data;

/// <summary>Labelled samples served in mini-batches, already preprocessed into network inputs.</summary>
public interface IBatchSource
{
    /// <summary>The number of samples.</summary>
    int Count { get; }

    /// <summary>The shape of one sample, for example [1, 32, 32].</summary>
    int[] SampleShape { get; }

    /// <summary>
    /// Fills batch <paramref name="batchIndex"/> of epoch <paramref name="epoch"/> (batches of <paramref name="batchSize"/>;
    /// the last may be smaller) and returns the number of samples written. The same arguments give the same batch.
    /// </summary>
    int FillBatch(int epoch, int batchIndex, int batchSize, Span<float> inputs, Span<int> labels);
}
