"""The contract between the mediaflow operator and the mediaflow worker.

Everything both sides must agree on is defined here, once:

- ``tasks``: the task spec models (``transcode``, ``snapshot``, ...), also the
  source of the ``spec.tasks`` schema of the Workflow CRD;
- ``workflow``, ``workflow_status``, ``workflow_fields``: the Workflow spec and
  status models and their field types (source of ``crds/``);
- ``job``: what the operator hands a worker Job (``WorkerJob``) and the exit
  codes the worker reports back;
- ``metadata``: the S3 user-metadata keys that mark objects as mediaflow output.

``__version__`` is the project's one version: the distribution's (setuptools reads it
from here), the worker's, and the tag of the default images.
"""

__version__ = "0.1.0"
