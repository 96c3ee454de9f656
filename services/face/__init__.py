"""Offline face landmarks: MediaPipe's 468-point face mesh (a bundled .tflite) run with LiteRT.

landmarks.py  Landmarker (detect one image, track a clip), Landmarks, Roi, Yuv420 input
search.py     the one face search for the media checks, fixes, thumbnails and the engine's
              flow fallback: Haar boxes the landmark model confirms
video.py      a clip's frames sampled at a capped rate, as decoder planes with timestamps
signals.py    expression and head-pose readings from landmarks, normalised by face size
"""
