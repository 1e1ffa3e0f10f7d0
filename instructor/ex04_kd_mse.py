"""Answer key of exercise kd-mse (value = f(student, teacher): embedding MSE).

Written out with numpy / torch only; graded like a
student's file: `python -m optical_ref check kd-mse --impl instructor/ex04_kd_mse.py:kd_mse`.
"""
def kd_mse(student, teacher):
    return ((student - teacher) ** 2).mean()
