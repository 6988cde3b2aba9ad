# zoo.models.transflow's names; __init__.py imports each on first use (lazy_loader reads this).
from .saved_model_flow import SavedModelFlow as SavedModelFlow, load_flow as load_flow
from .transflow import Transflow as Transflow
from .variances import BASE_VARIANCE as BASE_VARIANCE, VARIANCES as VARIANCES
