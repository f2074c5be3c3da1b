"""Queries: read-only answers shared by pages, exports, the API and services, one home per
question (enrolments, schedules, grades, gradebook, progress, insight, the directory of users
and programs, coursework). Nothing here writes or commits; queries import the models, storage
and each other, never a service or a view.
"""
