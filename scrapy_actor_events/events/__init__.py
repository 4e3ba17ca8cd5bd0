"""The platform's events and what the crawl does about them.

:mod:`.connection` keeps the process's events socket open and hands every frame to
:mod:`.messages`, which turns it into an :class:`~.messages.ActorEvent`; :mod:`.reactions`
decides what each event means for the crawl: a checkpoint, the :mod:`.migration` flush, an abort,
or a sample for the overload :mod:`.throttle`. Migration and throttle hold new requests through
one :mod:`.engine_hold`.
"""
