using System.Numerics.Tensors;
using Engine.Kernels;
using Engine.Tensors;

namespace Engine.Training;

/// <summary>
/// Cross-entropy of logits [N, C] against class labels, averaged over the batch, as PyTorch's CrossEntropyLoss
/// (optionally with label smoothing ε: the target is (1 - ε) onehot + ε / C):
/// <code>
///   loss        = (1/N) sum_n sum_c -t[n, c] log softmax(z[n])[c]
///   dloss/dz[n] = (softmax(z[n]) - t[n]) / N
/// </code>
/// log softmax is computed as z - max z - log sum exp(z - max z), so large logits never overflow.
/// </summary>
public sealed class CrossEntropyLoss
{
    private readonly FloatTensor _probabilities = new(0);
    private readonly FloatTensor _gradient = new(0);
    private int[] _labels = [];
    private int _batch;

    /// <summary>A loss with the given label smoothing (0 for none).</summary>
    public CrossEntropyLoss(float labelSmoothing = 0f)
    {
        if (!(labelSmoothing >= 0f && labelSmoothing < 1f))
        {
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), labelSmoothing, "label smoothing must be in [0, 1).");
        }
        LabelSmoothing = labelSmoothing;
    }

    /// <summary>ε in the smoothed target (1 - ε) onehot + ε / C.</summary>
    public float LabelSmoothing { get; }

    /// <summary>The mean loss over the batch; remembers the probabilities for <see cref="Backward"/>.</summary>
    public float Forward(FloatTensor logits, ReadOnlySpan<int> labels)
    {
        if (logits.Rank != 2)
        {
            throw new ArgumentException($"cross-entropy: expected logits [N, C], got {FloatTensor.Format(logits.Shape)}.");
        }
        int batch = logits.Dim(0), classes = logits.Dim(1);
        if (labels.Length != batch)
        {
            throw new ArgumentException($"cross-entropy: {batch} rows of logits but {labels.Length} labels.");
        }
        _probabilities.Resize([batch, classes]);    // softmax(z): [N, C]
        if (_labels.Length < batch)
        {
            _labels = new int[batch];
        }
        double total = 0;
        float off = LabelSmoothing / classes, on = 1f - LabelSmoothing + off;
        Span<float> logProbabilities = classes <= 256 ? stackalloc float[classes] : new float[classes];
        for (int n = 0; n < batch; n++)
        {
            int label = labels[n];
            if ((uint)label >= (uint)classes)
            {
                throw new ArgumentOutOfRangeException(nameof(labels), $"cross-entropy: label {label} at row {n} is not a class in [0, {classes}).");
            }
            _labels[n] = label;
            SoftmaxF32.LogSoftmax(logits.Data.Slice(n * classes, classes), logProbabilities);
            double rowLoss = LabelSmoothing == 0f
                ? -logProbabilities[label]
                : -(off * TensorPrimitives.Sum(logProbabilities) + (on - off) * logProbabilities[label]);
            total += rowLoss;
            TensorPrimitives.Exp(logProbabilities, _probabilities.Data.Slice(n * classes, classes));
        }
        _batch = batch;
        return (float)(total / batch);
    }

    /// <summary>dLoss/dLogits [N, C] for the last <see cref="Forward"/>: (softmax - target) / N.</summary>
    public FloatTensor Backward()
    {
        if (_batch == 0)
        {
            throw new InvalidOperationException("cross-entropy: Backward called before Forward.");
        }
        int classes = _probabilities.Dim(1);
        _gradient.Resize(_probabilities.Shape);
        float scale = 1f / _batch, off = LabelSmoothing / classes, on = 1f - LabelSmoothing + off;
        for (int n = 0; n < _batch; n++)
        {
            Span<float> g = _gradient.Data.Slice(n * classes, classes);
            TensorPrimitives.Subtract(_probabilities.Data.Slice(n * classes, classes), off, g);
            g[_labels[n]] -= on - off;
            TensorPrimitives.Multiply(g, scale, g);
        }
        return _gradient;
    }

    /// <summary>The probabilities softmax(z) [N, C] of the last <see cref="Forward"/>.</summary>
    public FloatTensor Probabilities => _probabilities;
}
