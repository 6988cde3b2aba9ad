"""How a run fails other than by bad input (a ValueError) or a stop (`preemption.Interrupted`),
apart from the run so that the command line can name it without TensorFlow."""


class TrainingDiverged(RuntimeError):
    """Training stopped because its steps kept having a non-finite loss or gradient."""
