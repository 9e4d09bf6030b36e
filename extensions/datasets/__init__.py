"""Datasets this project makes on disk, offline, in YOLOv5's format.

``shapes``          the built-in synthetic shapes dataset and demo video (cached, deterministic);
                    ``python scripts/make_shapes.py`` is its command line
``shapes_drawing``  what the shapes images hold: the ``Scene`` and the drawing of one image or a video clip
``coco128``         a data yaml for a coco128 copy, without writing into it; ``python scripts/coco128.py``
"""
