"""The one exception family for bad input: the CLI turns it into a one-line message."""


class ReproError(Exception):
    """Bad input (config, dataset file, checkpoint, CLI argument): stop with this message."""


class ConfigError(ReproError):
    pass


class DataError(ReproError):
    pass


class CheckpointError(ReproError):
    pass
