# zoo.models's names; __init__.py imports each on first use (lazy_loader reads this).
from .contract import (
    DataSpec as DataSpec,
    Phase as Phase,
    Prerequisite as Prerequisite,
    RunPlan as RunPlan,
    ZooModel as ZooModel,
)
